// Shared helpers of the quant tests: seeded heavy-tailed matrices (Student-t-like, as LLM weights are)
// and scalar reference computations.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace lords::test {

// (N, K) Student-t(df) samples times `scale`: normal / sqrt(chi2(df) / df).
inline std::vector<float> heavy_tailed(int64_t N, int64_t K, uint32_t seed, double df = 4.0, double scale = 0.02) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::chi_squared_distribution<double> chi2(df);
  std::vector<float> w(static_cast<size_t>(N * K));
  for (float& v : w) v = static_cast<float>(scale * normal(rng) / std::sqrt(chi2(rng) / df));
  return w;
}

// Row-scaled variant: every row gets its own magnitude, so block scales vary across rows and columns.
inline std::vector<float> heavy_tailed_rows(int64_t N, int64_t K, uint32_t seed) {
  std::vector<float> w = heavy_tailed(N, K, seed);
  std::mt19937 rng(seed + 1000);
  std::uniform_real_distribution<double> mag(0.5, 2.0);
  std::vector<double> col(static_cast<size_t>(K));
  for (double& c : col) c = mag(rng);
  for (int64_t n = 0; n < N; ++n) {
    const double rm = mag(rng);
    for (int64_t k = 0; k < K; ++k) w[static_cast<size_t>(n * K + k)] *= static_cast<float>(rm * col[static_cast<size_t>(k)]);
  }
  return w;
}

// S = B A with double accumulation, (N, r) x (r, K).
inline std::vector<double> product_ref(const std::vector<float>& B, const std::vector<float>& A, int64_t N,
                                       int64_t K, int64_t r) {
  std::vector<double> S(static_cast<size_t>(N * K), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < r; ++i) {
      const double b = B[static_cast<size_t>(n * r + i)];
      for (int64_t k = 0; k < K; ++k) S[static_cast<size_t>(n * K + k)] += b * A[static_cast<size_t>(i * K + k)];
    }
  return S;
}

}  // namespace lords::test
