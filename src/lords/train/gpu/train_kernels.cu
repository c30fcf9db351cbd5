// Training kernels (see train_kernels.h).
#include "lords/train/gpu/train_kernels.h"

#include "lords/cuda/quant/gpu_codebook.h"

#include <cmath>

#include "lords/cuda/cuda_check.h"
#include "lords/cuda/ops/kernel_util.cuh"
#include "lords/cuda/ops/launch_assert.h"

namespace lords::train::gpu {
namespace {

namespace rt = cuda::rt;
constexpr int kCeThreads = 512;
constexpr float kTiny = cuda::kGpuTinyScale;

#define LORDS_GRID_STRIDE(i, n)                                                                   \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// One block per row: max, then sum of exp, then (grad) the rewrite. The target logit is read before the
// first block reduction, whose barriers order it before any thread writes.
__global__ void cross_entropy_kernel(float* logits, float* row_loss, const int32_t* targets, const float* weights,
                                     int64_t V, bool grad, float coef) {
  __shared__ float partials[kCeThreads / rt::kWarp];
  const int64_t m = blockIdx.x;
  float* l = logits + m * V;
  const int32_t tgt = targets[m];
  const float w = weights ? weights[m] : 1.0f;
  const bool counted = tgt >= 0 && w > 0.0f;
  const float lt = counted ? l[tgt] : 0.0f;
  float mx = -INFINITY;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, l[v]);
  mx = rt::block_reduce(mx, partials, rt::MaxOp{});
  float sum = 0.0f;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) sum += expf(l[v] - mx);
  sum = rt::block_reduce(sum, partials, rt::SumOp{});
  const float lse = mx + logf(sum);
  if (threadIdx.x == 0) row_loss[m] = counted ? lse - lt : 0.0f;
  if (!grad) return;
  const float c = counted ? w * coef : 0.0f;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x)
    l[v] = c * (expf(l[v] - lse) - (v == tgt ? 1.0f : 0.0f));
}

__global__ void mul_by_levels_kernel(float* x, const uint8_t* codes, const float* levels, int64_t n) {
  LORDS_GRID_STRIDE(i, n) x[i] *= levels[codes[i]];
}

__global__ void dequant_block_kernel(float* W, const uint8_t* codes, const float* levels, const float* scales,
                                     int64_t K, int64_t G, int64_t n_blocks, int64_t n) {
  LORDS_GRID_STRIDE(i, n) {
    const int64_t row = i / K, k = i % K;
    W[i] = levels[codes[i]] * scales[row * n_blocks + k / G];
  }
}

__global__ void fake_quant_codes_kernel(float* SW, uint8_t* codes, const float* W, cuda::GpuCodebook cb, int64_t n) {
  LORDS_GRID_STRIDE(i, n) {
    const float s = SW[i];
    const uint8_t c = cuda::gpu_code(W[i], s, cb.mid, cb.n_levels - 1, cb.zero);
    codes[i] = c;
    SW[i] = cb.levels[c] * s;
  }
}

__global__ void ste_accumulate_kernel(float* dW, const float* G, const float* S, const float* W, float lo, float hi,
                                      bool zero_outside, int64_t n) {
  LORDS_GRID_STRIDE(i, n) {
    if (zero_outside) {
      const float s = S[i], x = W[i] / s;
      if (!(fabsf(s) >= kTiny && x >= lo && x <= hi)) continue;  // a NaN quotient fails too
    }
    dW[i] += G[i];
  }
}

}  // namespace

void cross_entropy_rows(float* logits, float* row_loss, const int32_t* targets, const float* weights, int64_t rows,
                        int64_t V, bool grad, float coef, cudaStream_t stream) {
  LORDS_ASSERT(rows >= 0 && V >= 1);
  if (rows == 0) return;
  cross_entropy_kernel<<<static_cast<unsigned>(rows), kCeThreads, 0, stream>>>(logits, row_loss, targets, weights, V,
                                                                               grad, coef);
  LORDS_CUDA_CHECK_LAUNCH();
}

void mul_by_levels(float* x, const uint8_t* codes, const float* levels, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  mul_by_levels_kernel<<<rt::element_blocks(n), rt::kElementThreads, 0, stream>>>(x, codes, levels, n);
  LORDS_CUDA_CHECK_LAUNCH();
}

void dequant_block(float* W, const uint8_t* codes, const float* levels, const float* scales, int64_t N, int64_t K,
                   int64_t G, cudaStream_t stream) {
  LORDS_ASSERT(N >= 0 && K >= 1 && G >= 1);
  const int64_t n = N * K;
  if (n == 0) return;
  dequant_block_kernel<<<rt::element_blocks(n), rt::kElementThreads, 0, stream>>>(W, codes, levels, scales, K, G,
                                                                                   (K + G - 1) / G, n);
  LORDS_CUDA_CHECK_LAUNCH();
}

void fake_quant_codes(float* SW, uint8_t* codes, const float* W, const cuda::GpuCodebook& cb, int64_t n,
                      cudaStream_t stream) {
  if (n == 0) return;
  fake_quant_codes_kernel<<<rt::element_blocks(n), rt::kElementThreads, 0, stream>>>(SW, codes, W, cb, n);
  LORDS_CUDA_CHECK_LAUNCH();
}

void ste_accumulate(float* dW, const float* G, const float* S, const float* W, float lo, float hi, bool zero_outside,
                    int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  ste_accumulate_kernel<<<rt::element_blocks(n), rt::kElementThreads, 0, stream>>>(dW, G, S, W, lo, hi, zero_outside,
                                                                                   n);
  LORDS_CUDA_CHECK_LAUNCH();
}

}  // namespace lords::train::gpu
