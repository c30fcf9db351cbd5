// Causal grouped-query attention over training sequences on the GPU: the ops of train/grad_attention.h
// (same layouts, same lse/delta conventions), fp32, device memory.
//   forward   one warp per query row (b, t, h); each lane holds Dh/32 of the head dims; keys are visited
//             in order with an online softmax (running max and sum), one warp reduction per key.
//   backward  two gathers, no atomics (deterministic): dq (and delta) by query rows, then dk, dv by key
//             rows, each recomputing P and dS from q, k, v, lse and delta.
// The work is O(B H T^2 Dh) scalar FMAs: fine for the fine-tuning lengths (T <= 2048) of the small models
// we train, and far below the linears' cost there.
#pragma once

#include <cuda_runtime.h>

#include "lords/train/grad_attention.h"

namespace lords::train::gpu {

// out (B, T, H, Dh), lse (B, T, H); q (B, T, H, Dh), k, v (B, T, Hkv, Dh). Dh <= 512.
void attention_fwd(float* out, float* lse, const float* q, const float* k, const float* v,
                   const AttentionTrainShape& s, cudaStream_t stream);

// dq (B, T, H, Dh), dk, dv (B, T, Hkv, Dh) overwritten; delta (B, T, H) scratch, overwritten.
void attention_bwd(float* dq, float* dk, float* dv, float* delta, const float* dout, const AttentionCache<float>& c,
                   const AttentionTrainShape& s, cudaStream_t stream);

}  // namespace lords::train::gpu
