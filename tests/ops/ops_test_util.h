// Shared helpers of the op tests: seeded normal vectors and output buffers with NaN sentinel bands
// that catch writes outside the output (after ggml's test-backend-ops).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace lords::test {

// n samples of N(mean, sd^2), seeded.
inline std::vector<float> random_vec(size_t n, uint32_t seed, float mean = 0.0f, float sd = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(mean, sd);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// An output buffer of n floats with kGuard sentinel floats before and after it.
struct Guarded {
  static constexpr size_t kGuard = 16;
  static constexpr uint32_t kSentinelBits = 0x7fc0dead;  // a quiet NaN no kernel produces
  std::vector<float> buf;

  explicit Guarded(size_t n) : buf(n + 2 * kGuard) {
    for (float& x : buf) std::memcpy(&x, &kSentinelBits, 4);
  }
  float* data() { return buf.data() + kGuard; }
  const float* data() const { return buf.data() + kGuard; }
  float operator[](size_t i) const { return buf[i + kGuard]; }
  std::vector<float> values() const { return {buf.begin() + kGuard, buf.end() - kGuard}; }
  void expect_guards_intact() const {
    for (size_t i = 0; i < kGuard; ++i) {
      uint32_t a, b;
      std::memcpy(&a, &buf[i], 4);
      std::memcpy(&b, &buf[buf.size() - 1 - i], 4);
      ASSERT_EQ(a, kSentinelBits) << "write before the output";
      ASSERT_EQ(b, kSentinelBits) << "write after the output";
    }
  }
};

}  // namespace lords::test
