// Reference causal GQA attention over training sequences, forward (saving lse) and backward (see
// train/grad_attention.h). No scratch beyond one head row on the stack: scores, probabilities and dP are
// recomputed from q, k, v, lse and delta wherever they are needed, and every sum is fp64. The backward
// gathers instead of scattering: dq row by row over keys, then dk/dv row by row over the queries that
// see them, so each output element is written exactly once.
#include "lords/train/grad_attention.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "lords/core/error.h"

namespace lords::train::ref {

namespace {

using Acc = std::array<double, ops::kMaxHeadDim>;

template <class T>
double dot(const T* a, const T* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

void check(const AttentionTrainShape& s) {
  LORDS_ASSERT(s.B >= 0 && s.T >= 0 && s.H > 0 && s.Hkv > 0 && s.H % s.Hkv == 0);
  LORDS_ASSERT(s.Dh > 0 && s.Dh <= ops::kMaxHeadDim);
}

// The softmax probability P[t,j] of query row (b, t, h) on key j (of h's kv head), rebuilt from the saved
// lse, and the score gradient dS[t,j].
struct Terms {
  double p, ds;
};
template <class T>
Terms terms(const T* dout, const AttentionCache<T>& c, const T* delta, const AttentionTrainShape& s, int64_t b,
            int64_t t, int64_t h, int64_t j) {
  const int64_t g = h / (s.H / s.Hkv), r = s.row(b, t, h);
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.Dh));
  const double p = std::exp(dot(c.q + s.q_at(b, t, h), c.k + s.kv_at(b, j, g), s.Dh) * scale - c.lse[r]);
  const double dp = dot(dout + s.q_at(b, t, h), c.v + s.kv_at(b, j, g), s.Dh);
  // softmax Jacobian: dS_j = sum_i dP_i (P_i [i == j] - P_i P_j) = P_j (dP_j - sum_i P_i dP_i)
  return {p, p * (dp - static_cast<double>(delta[r]))};
}

}  // namespace

template <class T>
void attention_fwd(T* out, T* lse, const T* q, const T* k, const T* v, const AttentionTrainShape& s) {
  check(s);
  const int64_t group = s.H / s.Hkv;
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.Dh));
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t t = 0; t < s.T; ++t)
      for (int64_t h = 0; h < s.H; ++h) {
        const T* qv = q + s.q_at(b, t, h);
        const int64_t g = h / group;
        // Pass 1: the max score (causal: keys 0..t of this sequence), so exp never overflows.
        double mx = -INFINITY;
        for (int64_t j = 0; j <= t; ++j) mx = std::max(mx, dot(qv, k + s.kv_at(b, j, g), s.Dh) * scale);
        // Pass 2: denominator and the probability-weighted value rows.
        double sum = 0;
        Acc acc{};
        for (int64_t j = 0; j <= t; ++j) {
          const double p = std::exp(dot(qv, k + s.kv_at(b, j, g), s.Dh) * scale - mx);
          sum += p;
          const T* vv = v + s.kv_at(b, j, g);
          for (int64_t d = 0; d < s.Dh; ++d) acc[static_cast<size_t>(d)] += p * vv[d];
        }
        T* o = out + s.q_at(b, t, h);
        for (int64_t d = 0; d < s.Dh; ++d) o[d] = static_cast<T>(acc[static_cast<size_t>(d)] / sum);
        lse[s.row(b, t, h)] = static_cast<T>(mx + std::log(sum));
      }
}

template <class T>
void attention_bwd(
    T* dq, T* dk, T* dv, T* delta, const T* dout, const AttentionCache<T>& c, const AttentionTrainShape& s) {
  check(s);
  const int64_t group = s.H / s.Hkv;
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.Dh));
  // delta = rowsum(dout * out) = sum_j P_j dP_j, because out = sum_j P_j v_j and dP_j = dout . v_j.
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t t = 0; t < s.T; ++t)
      for (int64_t h = 0; h < s.H; ++h)
        delta[s.row(b, t, h)] = static_cast<T>(dot(dout + s.q_at(b, t, h), c.out + s.q_at(b, t, h), s.Dh));
  // dq[t] = scale sum_{j <= t} dS[t,j] k[j]   (S = scale q . k)
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t t = 0; t < s.T; ++t)
      for (int64_t h = 0; h < s.H; ++h) {
        Acc acc{};
        for (int64_t j = 0; j <= t; ++j) {
          const double ds = terms(dout, c, delta, s, b, t, h, j).ds;
          const T* kv = c.k + s.kv_at(b, j, h / group);
          for (int64_t d = 0; d < s.Dh; ++d) acc[static_cast<size_t>(d)] += ds * kv[d];
        }
        T* dqv = dq + s.q_at(b, t, h);
        for (int64_t d = 0; d < s.Dh; ++d) dqv[d] = static_cast<T>(scale * acc[static_cast<size_t>(d)]);
      }
  // dk[j] = scale sum dS[t,j] q[t],  dv[j] = sum P[t,j] dout[t]: over the queries t >= j that see key j
  // and every query head h of kv head g (GQA: the group shares k and v, so their gradients add).
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t j = 0; j < s.T; ++j)
      for (int64_t g = 0; g < s.Hkv; ++g) {
        Acc ak{}, av{};
        for (int64_t t = j; t < s.T; ++t)
          for (int64_t h = g * group; h < (g + 1) * group; ++h) {
            const auto [p, ds] = terms(dout, c, delta, s, b, t, h, j);
            const T* qv = c.q + s.q_at(b, t, h);
            const T* dov = dout + s.q_at(b, t, h);
            for (int64_t d = 0; d < s.Dh; ++d) {
              ak[static_cast<size_t>(d)] += ds * qv[d];
              av[static_cast<size_t>(d)] += p * dov[d];
            }
          }
        for (int64_t d = 0; d < s.Dh; ++d) {
          dk[s.kv_at(b, j, g) + d] = static_cast<T>(scale * ak[static_cast<size_t>(d)]);
          dv[s.kv_at(b, j, g) + d] = static_cast<T>(av[static_cast<size_t>(d)]);
        }
      }
}

template void attention_fwd<float>(
    float*, float*, const float*, const float*, const float*, const AttentionTrainShape&);
template void attention_fwd<double>(
    double*, double*, const double*, const double*, const double*, const AttentionTrainShape&);
template void attention_bwd<float>(
    float*, float*, float*, float*, const float*, const AttentionCache<float>&, const AttentionTrainShape&);
template void attention_bwd<double>(double*, double*, double*, double*, const double*,
                                    const AttentionCache<double>&, const AttentionTrainShape&);

}  // namespace lords::train::ref
