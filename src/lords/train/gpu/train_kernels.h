// Element-wise and row kernels of GPU training that the runtime does not have: the fused masked
// cross-entropy over a chunk of logits, and the per-element steps of the quantized linears (codes to
// levels, block dequantization, QAT's fake quantization and straight-through gradient). fp32, device
// memory, all on `stream`.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "lords/cuda/quant/gpu_codebook.h"

namespace lords::train::gpu {

// train/grad_cross_entropy.h over `rows` rows, in place: row_loss[m] = lse - logits[m, target] for a
// counted row (target >= 0 and weight > 0; weights null means 1), 0 otherwise. With grad, logits become
// dlogits = weight[m] coef (softmax - onehot) on counted rows and 0 elsewhere (coef carries the
// caller's grad_scale / total count); without, logits are left as they are.
void cross_entropy_rows(float* logits, float* row_loss, const int32_t* targets, const float* weights, int64_t rows,
                        int64_t V, bool grad, float coef, cudaStream_t stream);

// x[i] *= levels[codes[i]] (n elements): S -> W_hat = level[Q] (.) S, and dW_hat -> dS.
void mul_by_levels(float* x, const uint8_t* codes, const float* levels, int64_t n, cudaStream_t stream);

// W (N, K) = levels[codes] * scales[n, k / G]: a block-wise weight (scales (N, ceil(K/G))) dequantized.
void dequant_block(float* W, const uint8_t* codes, const float* levels, const float* scales, int64_t N, int64_t K,
                   int64_t G, cudaStream_t stream);

// QAT forward (train/fake_quant.h), n elements: with S on input in SW, codes[i] = the nearest code of
// W[i] / S[i] by the rule of cuda/quant/gpu_codebook.h (the CPU's, bit for bit) and SW[i] becomes
// W_hat = levels[codes[i]] S[i].
void fake_quant_codes(float* SW, uint8_t* codes, const float* W, const cuda::GpuCodebook& cb, int64_t n,
                      cudaStream_t stream);

// QAT straight-through gradient, n elements: dW[i] += G[i] (G = dW_hat), except with zero_outside where
// W/S lies outside [lo, hi] or |S| < 1e-30 (the saturated quantizer passes nothing).
void ste_accumulate(float* dW, const float* G, const float* S, const float* W, float lo, float hi, bool zero_outside,
                    int64_t n, cudaStream_t stream);

}  // namespace lords::train::gpu
