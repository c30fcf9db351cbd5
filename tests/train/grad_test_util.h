// Helpers of the backward-op tests (test_grad_ops_*.cpp): seeded random vectors in any float type,
// central finite differences in fp64, and an elementwise comparison that reports the worst element
// and the NMSE (ggml test-backend-ops) when it fails.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lords/train/grad_attention.h"

namespace lords::test {

// n samples of N(mean, sd^2) drawn in fp64, stored as T, seeded.
template <class T>
std::vector<T> randn(size_t n, uint32_t seed, double sd = 1.0, double mean = 0.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(mean, sd);
  std::vector<T> v(n);
  for (T& x : v) x = static_cast<T>(normal(rng));
  return v;
}

template <class To, class From>
std::vector<To> cast(const std::vector<From>& v) {
  return std::vector<To>(v.begin(), v.end());
}

template <class T>
std::vector<T> nans(size_t n) {
  return std::vector<T>(n, std::numeric_limits<T>::quiet_NaN());
}

// sum_i a_i b_i in fp64: the scalar L = sum(dY * Y) whose gradient a backward with upstream dY computes.
template <class A, class B>
double dot(const std::vector<A>& a, const std::vector<B>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return s;
}

// dL/dx by central differences (L(x + h e_i) - L(x - h e_i)) / 2h for every element of x; x is perturbed
// in place and restored. Error: truncation h^2 L''' / 6 ~ 1e-12, rounding ~ 1e-16 |L| / h ~ 1e-9.
inline std::vector<double> fd_grad(std::vector<double>& x, const std::function<double()>& loss, double h = 1e-6) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const double lp = loss();
    x[i] = x0 - h;
    const double lm = loss();
    x[i] = x0;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

// Expects |got_i - want_i| <= rtol |want_i| + atol_rel max_j |want_j| for every i (the second term lets
// elements that are sums with cancellation be judged at the scale of the whole tensor).
template <class A, class B>
void expect_close(const std::vector<A>& got, const std::vector<B>& want, double rtol, double atol_rel,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0, err2 = 0, ref2 = 0;
  for (const B& w : want) scale = std::max(scale, std::abs(static_cast<double>(w)));
  size_t bad = 0, worst = 0;
  double worst_excess = -1;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
    const double err = std::abs(g - w), tol = rtol * std::abs(w) + atol_rel * scale;
    err2 += (g - w) * (g - w);
    ref2 += w * w;
    if (!(err <= tol)) ++bad;  // NaN counts as bad
    const double excess = std::isnan(err) ? INFINITY : err / std::max(tol, 1e-300);
    if (excess > worst_excess) worst_excess = excess, worst = i;
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " elements out of tolerance; worst ["
                     << worst << "] got " << static_cast<double>(got[worst]) << " want "
                     << static_cast<double>(want[worst]) << " (err/tol " << worst_excess << "), NMSE "
                     << (ref2 > 0 ? err2 / ref2 : err2) << ", max|want| " << scale;
}

// gtest parameter name of an attention shape: B2_T7_H4_Hkv2_Dh8.
inline std::string attention_shape_name(const ::testing::TestParamInfo<train::AttentionTrainShape>& info) {
  const auto& s = info.param;
  return fmt::format("B{}_T{}_H{}_Hkv{}_Dh{}", s.B, s.T, s.H, s.Hkv, s.Dh);
}

// after - before, in fp64: what an accumulating (+=) backward added to a prefilled gradient.
template <class T>
std::vector<double> added(const std::vector<T>& after, const std::vector<T>& before) {
  std::vector<double> d(after.size());
  for (size_t i = 0; i < d.size(); ++i) d[i] = static_cast<double>(after[i]) - static_cast<double>(before[i]);
  return d;
}

}  // namespace lords::test
