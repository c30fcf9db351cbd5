// Dense matmul: cpu (OpenBLAS) against ref (fp64 loops): bit-exact on small-integer inputs, within a
// norm-scaled tolerance on random ones; M in {1, 3, 17} (M = 1 takes the sgemv path), K at and off
// multiples of 8, with and without bias; sentinels around Y catch writes outside it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "lords/ops/matmul.h"
#include "ops_test_util.h"

using namespace lords;
using test::Guarded;
using test::random_vec;

namespace {

// fp32 GEMM vs fp64 dot products: |err| ~ eps32 * sqrt(K) * ||x|| ||w|| in practice (measured <= 1e-7
// at K = 1536); 5e-7 * ||x|| ||w|| leaves 5x headroom while a wrong element is off by O(||x|| ||w||).
constexpr double kNormTol = 5e-7;

std::vector<float> small_ints(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(-4, 4);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(dist(rng));
  return v;
}

struct Case {
  int64_t M, N, K;
};

class MatmulTest : public ::testing::TestWithParam<std::tuple<Case, bool>> {};

TEST_P(MatmulTest, CpuMatchesRef) {
  const auto [c, with_bias] = GetParam();
  const auto X = random_vec(static_cast<size_t>(c.M * c.K), 1);
  const auto W = random_vec(static_cast<size_t>(c.N * c.K), 2);
  const auto bias = random_vec(static_cast<size_t>(c.N), 3);
  const float* b = with_bias ? bias.data() : nullptr;
  Guarded want(static_cast<size_t>(c.M * c.N)), got(static_cast<size_t>(c.M * c.N));
  ops::ref::matmul(want.data(), X.data(), W.data(), b, c.M, c.N, c.K);
  ops::cpu::matmul(got.data(), X.data(), W.data(), b, c.M, c.N, c.K);
  want.expect_guards_intact();
  got.expect_guards_intact();
  double worst = 0;
  int64_t worst_i = -1;
  for (int64_t m = 0; m < c.M; ++m)
    for (int64_t n = 0; n < c.N; ++n) {
      double xx = 0, ww = 0;
      for (int64_t k = 0; k < c.K; ++k) {
        xx += double(X[m * c.K + k]) * X[m * c.K + k];
        ww += double(W[n * c.K + k]) * W[n * c.K + k];
      }
      const double err = std::abs(double(got.data()[m * c.N + n]) - want.data()[m * c.N + n]) /
                         (std::sqrt(xx * ww) + 1e-30);
      if (err > worst) worst = err, worst_i = m * c.N + n;
    }
  EXPECT_LE(worst, kNormTol) << "worst element " << worst_i;
}

INSTANTIATE_TEST_SUITE_P(Shapes, MatmulTest,
                         ::testing::Combine(::testing::Values(Case{1, 64, 64}, Case{3, 64, 64}, Case{17, 64, 64},
                                                              Case{1, 80, 160}, Case{3, 257, 130},
                                                              Case{17, 33, 7}, Case{1, 576, 1536},
                                                              Case{17, 576, 1536}),
                                            ::testing::Bool()));

TEST(Matmul, SmallIntegersAreExactOnBothBackends) {
  // |sums| <= 70 * 16 + 4 fit in 24 bits: every partial sum is exact in fp32, so summation order
  // cannot matter and both backends must give the integer answer bit for bit.
  for (int64_t M : {1, 3, 17}) {
    const int64_t N = 33, K = 70;
    const auto X = small_ints(static_cast<size_t>(M * K), 4), W = small_ints(static_cast<size_t>(N * K), 5);
    const auto bias = small_ints(static_cast<size_t>(N), 6);
    std::vector<float> want(static_cast<size_t>(M * N)), a(want.size()), b(want.size());
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        int64_t s = static_cast<int64_t>(bias[n]);
        for (int64_t k = 0; k < K; ++k) s += static_cast<int64_t>(X[m * K + k]) * static_cast<int64_t>(W[n * K + k]);
        want[m * N + n] = static_cast<float>(s);
      }
    ops::ref::matmul(a.data(), X.data(), W.data(), bias.data(), M, N, K);
    ops::cpu::matmul(b.data(), X.data(), W.data(), bias.data(), M, N, K);
    EXPECT_EQ(a, want) << "M=" << M;
    EXPECT_EQ(b, want) << "M=" << M;
  }
}

TEST(Matmul, EmptyInnerDimensionGivesTheBias) {
  const std::vector<float> bias = {1, 2, 3};
  std::vector<float> y(6, 7.0f), x(1), w(1);
  ops::cpu::matmul(y.data(), x.data(), w.data(), bias.data(), 2, 3, 0);
  EXPECT_EQ(y, (std::vector<float>{1, 2, 3, 1, 2, 3}));
  ops::cpu::matmul(y.data(), x.data(), w.data(), nullptr, 2, 3, 0);
  EXPECT_EQ(y, std::vector<float>(6, 0.0f));
}

}  // namespace
