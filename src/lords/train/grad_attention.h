// Causal grouped-query attention over whole training sequences (HF LlamaAttention, eager path),
// with the forward saving the per-row log-sum-exp so the backward can rebuild the softmax exactly:
//   S[t,j] = q[t,h,:] . k[j,g,:] / sqrt(Dh)   for j <= t,      g = h / (H/Hkv)
//   P[t,j] = exp(S[t,j] - lse[t,h]),   lse[t,h] = log sum_{j<=t} exp S[t,j],   out[t,h,:] = sum_j P[t,j] v[j,g,:]
// Backward (flash-attention form; D is the softmax-backward term, saved in `delta`):
//   delta[t,h] = dout[t,h,:] . out[t,h,:]  (= sum_j P[t,j] dP[t,j])
//   dP[t,j] = dout[t,h,:] . v[j,g,:],      dS[t,j] = P[t,j] (dP[t,j] - delta[t,h])
//   dq[t,h,:] = sum_j dS[t,j] k[j,g,:] / sqrt(Dh)
//   dk[j,g,:] = sum_{t>=j, h in g} dS[t,j] q[t,h,:] / sqrt(Dh),   dv[j,g,:] = sum_{t>=j, h in g} P[t,j] dout[t,h,:]
// Batch: B independent sequences of T tokens each (every sequence starts at position 0, no packing);
// layouts q, out, dq, dout (B, T, H, Dh); k, v, dk, dv (B, T, Hkv, Dh); lse, delta (B, T, H).
// dq, dk, dv are activation grads: OVERWRITTEN (dk, dv already summed over the H/Hkv heads of a group).
// delta is caller-provided scratch (ops never allocate), overwritten. No output may alias an input.
//   ref:: templated on the float type; scores recomputed from q, k and lse, every sum in fp64, each
//         output element written once (dk, dv gathered per key row, no scatter).
//   cpu:: fp32; forward: blocks of 16 query rows share each key/value row, online softmax;
//         backward: dq by query blocks, then dk/dv by key blocks (no atomics, deterministic). OpenMP.
#pragma once

#include <cstdint>

#include "lords/ops/attention.h"  // kMaxHeadDim

namespace lords::train {

struct AttentionTrainShape {
  int64_t B = 0;    // sequences
  int64_t T = 0;    // tokens per sequence
  int64_t H = 0;    // query heads
  int64_t Hkv = 0;  // key/value heads, H % Hkv == 0
  int64_t Dh = 0;   // head dim, <= ops::kMaxHeadDim

  constexpr int64_t row(int64_t b, int64_t t, int64_t h) const { return (b * T + t) * H + h; }  // lse/delta index
  constexpr int64_t q_at(int64_t b, int64_t t, int64_t h) const { return row(b, t, h) * Dh; }  // q/out element offset
  constexpr int64_t kv_at(int64_t b, int64_t t, int64_t g) const { return ((b * T + t) * Hkv + g) * Dh; }
};

// What attention_fwd leaves for attention_bwd (q and k after RoPE).
template <class T>
struct AttentionCache {
  const T* q = nullptr;    // (B, T, H, Dh)
  const T* k = nullptr;    // (B, T, Hkv, Dh)
  const T* v = nullptr;    // (B, T, Hkv, Dh)
  const T* out = nullptr;  // (B, T, H, Dh)
  const T* lse = nullptr;  // (B, T, H)
};

namespace ref {
// out (B, T, H, Dh), lse (B, T, H); q (B, T, H, Dh), k, v (B, T, Hkv, Dh)
template <class T>
void attention_fwd(T* out, T* lse, const T* q, const T* k, const T* v, const AttentionTrainShape& s);
// dq (B, T, H, Dh), dk, dv (B, T, Hkv, Dh), delta (B, T, H) scratch; dout (B, T, H, Dh)
template <class T>
void attention_bwd(T* dq, T* dk, T* dv, T* delta, const T* dout, const AttentionCache<T>& c,
                   const AttentionTrainShape& s);
}  // namespace ref

namespace cpu {
void attention_fwd(float* out, float* lse, const float* q, const float* k, const float* v,
                   const AttentionTrainShape& s);
void attention_bwd(float* dq, float* dk, float* dv, float* delta, const float* dout, const AttentionCache<float>& c,
                   const AttentionTrainShape& s);
}  // namespace cpu

}  // namespace lords::train
