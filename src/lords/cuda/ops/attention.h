// Causal grouped-query attention on the GPU against a device KV cache, the op of ops/attention.h:
//   out[t,h,:] = sum_{j <= p0+t} softmax_j(q[t,h,:] . k[j,g,:] / sqrt(Dh)) v[j,g,:],   g = h / (H/Hkv)
// q holds T new tokens at positions p0..p0+T-1 (T = 1: decode; T > 1: prefill, p0 may be > 0); the
// caches hold rows 0..p0+T-1, this step's keys (after RoPE) and values already written. Everything in
// fp32, softmax with max subtraction. Device memory; out must not alias q or the caches.
#pragma once

#include <cuda_runtime.h>

#include "lords/ops/attention.h"

namespace lords::cuda {

// out (T, H, Dh), q (T, H, Dh), k_cache / v_cache (L_max, Hkv, Dh) with L_max >= p0 + T.
// s.Dh <= ops::kMaxHeadDim, s.H % s.Hkv == 0.
// p0_dev: read the position from device memory instead of s.p0 (a CUDA graph replays the same launch at
// every decode step; the grid does not depend on p0).
void attention(float* out, const float* q, const float* k_cache, const float* v_cache, const ops::AttentionShape& s,
               cudaStream_t stream, const int64_t* p0_dev = nullptr);

// One decode step's key and value rows (row = Hkv * Dh floats each) into cache row *p0_dev: the graph
// form of writing the projections straight into the cache, whose address depends on p0.
void kv_append(float* k_cache, float* v_cache, const float* k_new, const float* v_new, const int64_t* p0_dev,
               int64_t row, cudaStream_t stream);

}  // namespace lords::cuda
