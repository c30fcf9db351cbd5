// Causal GQA attention over a KV cache: cpu against ref for T in {1, 3, 17}, cached prefixes p0 that
// span several key tiles, head dims 64/80 and GQA ratios 1/3/4; causality (rows past p0+T are NaN in
// the cache and a query row equals the same token run alone); exact special cases; sharp softmax.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "lords/ops/attention.h"
#include "ops_test_util.h"

using namespace lords;
using test::Guarded;
using test::random_vec;

namespace {

// Tolerances relative to max |v| (the output is a convex combination of value rows).
// Scores ~ N(0, 1): fp32 dot products and the online softmax's rescaling put each weight within a
// few 1e-7 relative; measured worst 1.3e-7 max|v| over the sweep below.
constexpr double kTol = 2e-6;
// Scores scaled x30 (near one-hot softmax): the exp amplifies score rounding 30x; measured 1.3e-6.
constexpr double kSharpTol = 1e-5;

struct Problem {
  ops::AttentionShape s;
  std::vector<float> q, k, v;  // q (T, H, Dh); k, v (L_max, Hkv, Dh) with NaN rows past p0 + T

  Problem(ops::AttentionShape shape, uint32_t seed, float q_sd = 1.0f) : s(shape) {
    const int64_t L_max = s.p0 + s.T + 3, row = s.Hkv * s.Dh;
    q = random_vec(static_cast<size_t>(s.T * s.H * s.Dh), seed, 0.0f, q_sd);
    k = random_vec(static_cast<size_t>(L_max * row), seed + 1);
    v = random_vec(static_cast<size_t>(L_max * row), seed + 2);
    for (int64_t i = (s.p0 + s.T) * row; i < L_max * row; ++i)
      k[i] = v[i] = std::numeric_limits<float>::quiet_NaN();
  }
  double max_abs_v() const {
    double m = 0;
    for (float x : v)
      if (std::isfinite(x)) m = std::max(m, double(std::abs(x)));
    return m;
  }
  using Fn = void (*)(float*, const float*, const float*, const float*, const ops::AttentionShape&);
  std::vector<float> run(Fn fn) const {
    Guarded out(static_cast<size_t>(s.T * s.H * s.Dh));
    fn(out.data(), q.data(), k.data(), v.data(), s);
    out.expect_guards_intact();
    return out.values();
  }
};

void expect_close(const std::vector<float>& got, const std::vector<float>& want, double tol, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  double worst = 0;
  size_t worst_i = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i])) << what << " element " << i;
    const double e = std::abs(double(got[i]) - want[i]);
    if (e > worst) worst = e, worst_i = i;
  }
  EXPECT_LE(worst, tol) << what << ": worst element " << worst_i << " got " << got[worst_i] << " want "
                        << want[worst_i];
}

class AttentionTest
    : public ::testing::TestWithParam<std::tuple<int64_t, int64_t, std::pair<int64_t, int64_t>, int64_t>> {};

TEST_P(AttentionTest, CpuMatchesRefAndRowsAreCausal) {
  const auto [T, p0, heads, Dh] = GetParam();
  const ops::AttentionShape s{T, p0, heads.first, heads.second, Dh};
  const Problem p(s, static_cast<uint32_t>(T * 1000 + p0 * 10 + Dh));
  const auto ref = p.run(&ops::ref::attention), cpu = p.run(&ops::cpu::attention);
  expect_close(cpu, ref, kTol * p.max_abs_v(), "cpu vs ref");
  // Query row t alone, as one token at position p0 + t, gives the same row bit for bit on each
  // backend: no key past the query's own position leaks in, and prefill equals decode.
  for (int64_t t = 0; t < T; ++t) {
    Problem one = p;
    one.s.T = 1;
    one.s.p0 = p0 + t;
    one.q.assign(p.q.begin() + t * s.H * Dh, p.q.begin() + (t + 1) * s.H * Dh);
    const auto r1 = one.run(&ops::ref::attention), c1 = one.run(&ops::cpu::attention);
    for (int64_t j = 0; j < s.H * Dh; ++j) {
      ASSERT_EQ(r1[j], ref[t * s.H * Dh + j]) << "ref t=" << t;
      ASSERT_EQ(c1[j], cpu[t * s.H * Dh + j]) << "cpu t=" << t;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionTest,
                         ::testing::Combine(::testing::Values(1, 3, 17), ::testing::Values(0, 5, 150),
                                            ::testing::Values(std::make_pair(4, 4), std::make_pair(6, 2),
                                                              std::make_pair(8, 2)),
                                            ::testing::Values(64, 80)));

TEST(Attention, SingleKeyReturnsItsValueExactly) {
  const Problem p({1, 0, 6, 2, 80}, 21);
  for (auto fn : {&ops::ref::attention, &ops::cpu::attention}) {
    const auto out = p.run(fn);
    for (int64_t h = 0; h < 6; ++h)
      for (int64_t d = 0; d < 80; ++d) ASSERT_EQ(out[h * 80 + d], p.v[(h / 3) * 80 + d]) << h << "," << d;
  }
}

TEST(Attention, ZeroQueryAveragesTheVisibleValues) {
  Problem p({3, 70, 4, 1, 64}, 22);
  std::fill(p.q.begin(), p.q.end(), 0.0f);
  for (auto fn : {&ops::ref::attention, &ops::cpu::attention}) {
    const auto out = p.run(fn);
    for (int64_t t = 0; t < 3; ++t)
      for (int64_t d = 0; d < 64; ++d) {
        double mean = 0;
        for (int64_t j = 0; j <= 70 + t; ++j) mean += p.v[j * 64 + d];
        mean /= 71 + t;
        for (int64_t h = 0; h < 4; ++h) ASSERT_NEAR(out[(t * 4 + h) * 64 + d], mean, 1e-6) << t << "," << d;
      }
  }
}

TEST(Attention, SharpSoftmaxStaysFiniteAndAgrees) {
  // q scaled x30: scores up to ~100, exp would overflow without the max subtraction.
  const Problem p({17, 150, 8, 2, 64}, 23, 30.0f);
  expect_close(p.run(&ops::cpu::attention), p.run(&ops::ref::attention), kSharpTol * p.max_abs_v(), "sharp");
}

}  // namespace
