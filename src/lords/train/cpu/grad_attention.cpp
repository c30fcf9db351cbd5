// CPU causal GQA attention over training sequences (see train/grad_attention.h), fp32, OpenMP.
// Work is cut into blocks of kBlock rows so each loaded row is reused kBlock times from cache:
//   forward     task = (b, h, block of queries): each key/value row updates all queries of the block
//               that see it, with a per-row online softmax (running max m, denominator l; the output
//               row is the accumulator, rescaled by exp(m_old - m_new) only when the max grows);
//   backward 1  delta = rowsum(dout * out), one row per iteration;
//   backward 2  task = (b, h, block of queries) gathers dq over the keys j <= t;
//   backward 3  task = (b, g, block of keys) gathers dk, dv over the queries t >= j of the group's heads.
// Every output row is owned by one task: no atomics, results independent of the thread count.
// Probabilities are rebuilt as exp(S - lse) from the saved lse. Dynamic schedule: causal rows differ in length.
#include "lords/train/grad_attention.h"

#include <algorithm>
#include <cmath>

#include "lords/core/error.h"

namespace lords::train::cpu {

namespace {

constexpr int64_t kBlock = 16;                   // query (or key) rows per task
constexpr int64_t kMinParallelFlops = 1 << 16;   // below this, waking the team costs more than the work

float dot(const float* a, const float* b, int64_t n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// y += p x
void axpy(float* y, float p, const float* x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += p * x[i];
}

void check(const AttentionTrainShape& s) {
  LORDS_ASSERT(s.B >= 0 && s.T >= 0 && s.H > 0 && s.Hkv > 0 && s.H % s.Hkv == 0);
  LORDS_ASSERT(s.Dh > 0 && s.Dh <= ops::kMaxHeadDim);
}

bool worth_threads(const AttentionTrainShape& s) { return s.B * s.H * s.T * s.T * s.Dh >= kMinParallelFlops; }

}  // namespace

void attention_fwd(
    float* out, float* lse, const float* q, const float* k, const float* v, const AttentionTrainShape& s) {
  check(s);
  const int64_t group = s.H / s.Hkv, n_blk = (s.T + kBlock - 1) / kBlock, Dh = s.Dh;
  const float scale = 1.0f / std::sqrt(static_cast<float>(Dh));
#pragma omp parallel for schedule(dynamic) if (worth_threads(s))
  for (int64_t task = 0; task < s.B * s.H * n_blk; ++task) {
    const int64_t b = task / (s.H * n_blk), h = task / n_blk % s.H, t0 = task % n_blk * kBlock;
    const int64_t t1 = std::min(s.T, t0 + kBlock), g = h / group;
    float m[kBlock], l[kBlock];
    for (int64_t t = t0; t < t1; ++t) {
      m[t - t0] = -INFINITY;
      l[t - t0] = 0.0f;
      std::fill(out + s.q_at(b, t, h), out + s.q_at(b, t, h) + Dh, 0.0f);
    }
    for (int64_t j = 0; j < t1; ++j) {
      const float* kj = k + s.kv_at(b, j, g);
      const float* vj = v + s.kv_at(b, j, g);
      for (int64_t t = std::max(t0, j); t < t1; ++t) {  // causal: queries t >= j see key j
        const int64_t i = t - t0;
        float* o = out + s.q_at(b, t, h);
        const float sc = dot(q + s.q_at(b, t, h), kj, Dh) * scale;
        if (sc > m[i]) {  // new max: rescale what was summed so far (exp(-inf) = 0 on the first key)
          const float c = std::exp(m[i] - sc);
          l[i] *= c;
          for (int64_t d = 0; d < Dh; ++d) o[d] *= c;
          m[i] = sc;
        }
        const float p = std::exp(sc - m[i]);
        l[i] += p;
        axpy(o, p, vj, Dh);
      }
    }
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i = t - t0;
      float* o = out + s.q_at(b, t, h);
      const float inv = 1.0f / l[i];
      for (int64_t d = 0; d < Dh; ++d) o[d] *= inv;
      lse[s.row(b, t, h)] = m[i] + std::log(l[i]);
    }
  }
}

void attention_bwd(float* dq,
                   float* dk,
                   float* dv,
                   float* delta,
                   const float* dout,
                   const AttentionCache<float>& c,
                   const AttentionTrainShape& s) {
  check(s);
  const int64_t group = s.H / s.Hkv, n_blk = (s.T + kBlock - 1) / kBlock, Dh = s.Dh;
  const float scale = 1.0f / std::sqrt(static_cast<float>(Dh));
#pragma omp parallel if (worth_threads(s))
  {
    // 1. delta = sum_j P dP = dout . out (out = sum_j P v_j, dP_j = dout . v_j)
#pragma omp for schedule(static)
    for (int64_t r = 0; r < s.B * s.T * s.H; ++r) delta[r] = dot(dout + r * Dh, c.out + r * Dh, Dh);
    // (implicit barrier: steps 2 and 3 read every delta)
    // 2. dq[t] = scale sum_{j <= t} dS[t,j] k[j],   dS = P (dP - delta)  (softmax Jacobian)
#pragma omp for schedule(dynamic) nowait
    for (int64_t task = 0; task < s.B * s.H * n_blk; ++task) {
      const int64_t b = task / (s.H * n_blk), h = task / n_blk % s.H, t0 = task % n_blk * kBlock;
      const int64_t t1 = std::min(s.T, t0 + kBlock), g = h / group;
      for (int64_t t = t0; t < t1; ++t) std::fill(dq + s.q_at(b, t, h), dq + s.q_at(b, t, h) + Dh, 0.0f);
      for (int64_t j = 0; j < t1; ++j) {
        const float* kj = c.k + s.kv_at(b, j, g);
        const float* vj = c.v + s.kv_at(b, j, g);
        for (int64_t t = std::max(t0, j); t < t1; ++t) {
          const int64_t r = s.row(b, t, h);
          const float p = std::exp(dot(c.q + r * Dh, kj, Dh) * scale - c.lse[r]);
          const float ds = p * (dot(dout + r * Dh, vj, Dh) - delta[r]);
          axpy(dq + r * Dh, ds * scale, kj, Dh);
        }
      }
    }
    // 3. dk[j] = scale sum dS[t,j] q[t],  dv[j] = sum P[t,j] dout[t]  over t >= j and the heads of group g
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < s.B * s.Hkv * n_blk; ++task) {
      const int64_t b = task / (s.Hkv * n_blk), g = task / n_blk % s.Hkv, j0 = task % n_blk * kBlock;
      const int64_t j1 = std::min(s.T, j0 + kBlock);
      for (int64_t j = j0; j < j1; ++j) {
        std::fill(dk + s.kv_at(b, j, g), dk + s.kv_at(b, j, g) + Dh, 0.0f);
        std::fill(dv + s.kv_at(b, j, g), dv + s.kv_at(b, j, g) + Dh, 0.0f);
      }
      for (int64_t t = j0; t < s.T; ++t)
        for (int64_t h = g * group; h < (g + 1) * group; ++h) {
          const int64_t r = s.row(b, t, h);
          const float* qt = c.q + r * Dh;
          const float* dout_t = dout + r * Dh;
          for (int64_t j = j0; j < std::min(j1, t + 1); ++j) {  // causal: key j is seen by t >= j
            const float p = std::exp(dot(qt, c.k + s.kv_at(b, j, g), Dh) * scale - c.lse[r]);
            const float ds = p * (dot(dout_t, c.v + s.kv_at(b, j, g), Dh) - delta[r]);
            axpy(dk + s.kv_at(b, j, g), ds * scale, qt, Dh);
            axpy(dv + s.kv_at(b, j, g), p, dout_t, Dh);
          }
        }
    }
  }
}

}  // namespace lords::train::cpu
