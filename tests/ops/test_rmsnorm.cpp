// RMSNorm: ref against the formula in fp64, cpu against ref (rows M in {1, 3, 17}, D at and off
// multiples of 8 and 32), in place, sentinels around the output.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "lords/ops/rmsnorm.h"

using namespace lords;

namespace {

// ref computes the scale in fp64 and rounds it once: within 2 fp32 ulps of the exact value.
constexpr double kRefRtol = 3e-7;
// cpu sums squares in fp32 over 32 lanes: the scale's relative error ~ eps32 * D / 32 at worst.
constexpr double kCpuRtol = 2e-6;
constexpr size_t kGuard = 16;
constexpr uint32_t kSentinelBits = 0x7fc0dead;

std::vector<float> random_vec(size_t n, uint32_t seed, float mean = 0.0f, float sd = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(mean, sd);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

class RmsnormTest : public ::testing::TestWithParam<std::tuple<int64_t, int64_t>> {};

TEST_P(RmsnormTest, RefMatchesFormulaAndCpuMatchesRef) {
  const auto [M, D] = GetParam();
  const float eps = 1e-5f;
  // A row scale spread over 1e-2 .. 1e2 exercises the normalization, not just unit-variance rows.
  auto x = random_vec(static_cast<size_t>(M * D), 7);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t d = 0; d < D; ++d) x[m * D + d] *= std::pow(10.0f, static_cast<float>(m % 5) - 2.0f);
  const auto w = random_vec(static_cast<size_t>(D), 8, 1.0f, 0.1f);
  std::vector<float> ref(static_cast<size_t>(M * D) + 2 * kGuard), cpu(ref.size());
  for (auto* v : {&ref, &cpu})
    for (float& f : *v) std::memcpy(&f, &kSentinelBits, 4);
  ops::ref::rmsnorm(ref.data() + kGuard, x.data(), w.data(), M, D, eps);
  ops::cpu::rmsnorm(cpu.data() + kGuard, x.data(), w.data(), M, D, eps);
  for (size_t i = 0; i < kGuard; ++i)
    for (const auto* v : {&ref, &cpu}) {
      uint32_t a, b;
      std::memcpy(&a, &(*v)[i], 4);
      std::memcpy(&b, &(*v)[v->size() - 1 - i], 4);
      ASSERT_EQ(a, kSentinelBits);
      ASSERT_EQ(b, kSentinelBits);
    }
  for (int64_t m = 0; m < M; ++m) {
    double ss = 0;
    for (int64_t d = 0; d < D; ++d) ss += double(x[m * D + d]) * x[m * D + d];
    const double rstd = 1.0 / std::sqrt(ss / D + eps);
    for (int64_t d = 0; d < D; ++d) {
      const double exact = x[m * D + d] * rstd * w[d];
      const size_t i = static_cast<size_t>(m * D + d) + kGuard;
      ASSERT_NEAR(ref[i], exact, kRefRtol * std::abs(exact) + 1e-30) << "ref m=" << m << " d=" << d;
      ASSERT_NEAR(cpu[i], ref[i], kCpuRtol * std::abs(exact) + 1e-30) << "cpu m=" << m << " d=" << d;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, RmsnormTest,
                         ::testing::Combine(::testing::Values(1, 3, 17), ::testing::Values(7, 64, 80, 576, 4099)));

TEST(Rmsnorm, InPlaceEqualsOutOfPlace) {
  const int64_t M = 17, D = 80;
  const auto x = random_vec(static_cast<size_t>(M * D), 9), w = random_vec(static_cast<size_t>(D), 10);
  for (auto fn : {&ops::ref::rmsnorm, &ops::cpu::rmsnorm}) {
    std::vector<float> out(x.size()), inplace = x;
    fn(out.data(), x.data(), w.data(), M, D, 1e-6f);
    fn(inplace.data(), inplace.data(), w.data(), M, D, 1e-6f);
    EXPECT_EQ(out, inplace);
  }
}

TEST(Rmsnorm, ZeroRowGivesZerosNotNan) {
  const int64_t D = 64;
  std::vector<float> x(D, 0.0f), w(D, 1.0f), y(D, 1.0f);
  for (auto fn : {&ops::ref::rmsnorm, &ops::cpu::rmsnorm}) {
    fn(y.data(), x.data(), w.data(), 1, D, 1e-6f);
    EXPECT_EQ(y, x);
  }
}

}  // namespace
