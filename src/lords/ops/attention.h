// Causal grouped-query attention over a KV cache (HF LlamaAttention, eager path):
//   out[t,h,:] = sum_{j <= p0+t} softmax_j(q[t,h,:] . k[j,g,:] / sqrt(Dh)) v[j,g,:],   g = h / (H/Hkv)
// q holds T new tokens at positions p0..p0+T-1; the caches hold rows 0..p0+T-1 (this step's keys and
// values already written). Softmax in fp32 with max subtraction (ref: fp64 sums).
//   ref:: two passes per query row (max, then exp-sum and weighted sum), scores recomputed, no scratch.
//   cpu:: one pass, online softmax over tiles of keys (flash-attention style), (t, h) rows in parallel.
// Neither allocates. out must not alias q or the caches.
#pragma once

#include <cstdint>

namespace lords::ops {

// Largest head dim the kernels accept (they keep one head's accumulator on the stack); real models use <= 256.
inline constexpr int64_t kMaxHeadDim = 512;

struct AttentionShape {
  int64_t T = 0;    // new tokens (query rows)
  int64_t p0 = 0;   // position of the first new token = tokens already cached before this step
  int64_t H = 0;    // query heads
  int64_t Hkv = 0;  // key/value heads, H % Hkv == 0
  int64_t Dh = 0;   // head dim, <= kMaxHeadDim
};

namespace ref {
// out (T, H, Dh), q (T, H, Dh), k_cache / v_cache (L_max, Hkv, Dh) with L_max >= p0 + T
void attention(float* out, const float* q, const float* k_cache, const float* v_cache, const AttentionShape& s);
}  // namespace ref
namespace cpu {
void attention(float* out, const float* q, const float* k_cache, const float* v_cache, const AttentionShape& s);
}  // namespace cpu

}  // namespace lords::ops
