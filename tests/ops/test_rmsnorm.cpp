// RMSNorm: ref against the formula in fp64, cpu against ref (rows M in {1, 3, 17}, D at and off
// multiples of 8 and 32), in place, sentinels around the output.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "lords/ops/rmsnorm.h"
#include "ops_test_util.h"

using namespace lords;
using test::Guarded;
using test::random_vec;

namespace {

// ref computes the scale in fp64 and rounds it once: within 2 fp32 ulps of the exact value.
constexpr double kRefRtol = 3e-7;
// cpu sums squares in fp32 over 32 lanes: the scale's relative error ~ eps32 * D / 32 at worst.
constexpr double kCpuRtol = 2e-6;

class RmsnormTest : public ::testing::TestWithParam<std::tuple<int64_t, int64_t>> {};

TEST_P(RmsnormTest, RefMatchesFormulaAndCpuMatchesRef) {
  const auto [M, D] = GetParam();
  const float eps = 1e-5f;
  // A row scale spread over 1e-2 .. 1e2 exercises the normalization, not just unit-variance rows.
  auto x = random_vec(static_cast<size_t>(M * D), 7);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t d = 0; d < D; ++d) x[m * D + d] *= std::pow(10.0f, static_cast<float>(m % 5) - 2.0f);
  const auto w = random_vec(static_cast<size_t>(D), 8, 1.0f, 0.1f);
  Guarded ref(static_cast<size_t>(M * D)), cpu(static_cast<size_t>(M * D));
  ops::ref::rmsnorm(ref.data(), x.data(), w.data(), M, D, eps);
  ops::cpu::rmsnorm(cpu.data(), x.data(), w.data(), M, D, eps);
  ref.expect_guards_intact();
  cpu.expect_guards_intact();
  for (int64_t m = 0; m < M; ++m) {
    double ss = 0;
    for (int64_t d = 0; d < D; ++d) ss += double(x[m * D + d]) * x[m * D + d];
    const double rstd = 1.0 / std::sqrt(ss / D + eps);
    for (int64_t d = 0; d < D; ++d) {
      const double exact = x[m * D + d] * rstd * w[d];
      const size_t i = static_cast<size_t>(m * D + d);
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
