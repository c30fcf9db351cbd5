// Shared by the GPU tests: skip cleanly without a GPU, fresh random inputs, relative errors.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "lords/cuda/device.h"

#define LORDS_REQUIRE_GPU()                                                  \
  do {                                                                       \
    if (!::lords::cuda::gpu_available()) GTEST_SKIP() << "no CUDA GPU here"; \
  } while (0)

namespace lords::test {

// ||a - b|| / ||b|| in fp64; NaN anywhere makes it NaN (and so fails any bound).
inline double rel_err(const std::vector<float>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += b[i] * b[i];
  }
  return std::sqrt(num / (den > 0 ? den : 1.0));
}

// C (rows, cols) = L · R summed in fp64 and rounded to float; L is (rows, inner) row-major, or stored
// transposed as (inner, rows) with l_transposed; R is (inner, cols).
inline std::vector<float> product_f64(const std::vector<float>& L, const std::vector<float>& R, int64_t rows,
                                      int64_t inner, int64_t cols, bool l_transposed = false) {
  std::vector<float> C(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      double s = 0;
      for (int64_t p = 0; p < inner; ++p)
        s += static_cast<double>(l_transposed ? L[p * rows + i] : L[i * inner + p]) * R[p * cols + j];
      C[i * cols + j] = static_cast<float>(s);
    }
  return C;
}

inline std::vector<float> gpu_random_vec(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

}  // namespace lords::test
