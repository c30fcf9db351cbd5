// Device helpers shared by the quantization kernels (quant_kernels.h): block sums in double with the
// fixed-order finish over the per-block partials (every sum is reproducible bit for bit run to run),
// and the storage-dtype rounding of lords::round_through.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "lords/cuda/quant/quant_kernels.h"

namespace lords::cuda::qk {

inline constexpr int kThreads = 256;  // threads per block of the element-wise kernels

// Blocks for a grid-stride loop over n items: enough to fill an H100, never more than kSumBlocks. Depends
// on n only, which keeps the partial sums (and so every result) deterministic.
inline int sum_grid(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 1 ? 1 : blocks > kSumBlocks ? kSumBlocks : blocks);
}

// Sum of v over the block (blockDim.x a multiple of 32); the result is valid in thread 0. Every
// thread of the block must call it; it may be called again right away.
__device__ inline double block_sum(double v) {
  __shared__ double warp_sums[32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = static_cast<int>(threadIdx.x) & 31, warp = static_cast<int>(threadIdx.x) >> 5;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  v = 0.0;
  if (warp == 0) {
    const int n_warps = static_cast<int>(blockDim.x) >> 5;
    v = lane < n_warps ? warp_sums[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  }
  __syncthreads();  // warp_sums is free again
  return v;
}

// v rounded through a storage dtype and back (core/dtype.h's conversions, shared with the CPU).
__device__ __forceinline__ float round_dev(float v, DType dtype) {
  switch (dtype) {
    case DType::F16: return fp16_to_f32(f32_to_fp16(v));
    case DType::BF16: return bf16_to_f32(f32_to_bf16(v));
    default: return v;
  }
}

// partials: [c * kSumBlocks + block] for c < n_sums; out[c] = their sum over blocks < n_blocks.
void finish_sums(SumScratch sum, int n_blocks, int n_sums, cudaStream_t stream);

}  // namespace lords::cuda::qk
