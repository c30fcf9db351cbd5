// Device helpers the runtime's kernels share: warp and block reductions in fp32, and the grid size of
// element-wise kernels. Included by the ops' .cu files only (each is its own translation unit).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace lords::cuda::rt {

inline constexpr int kWarp = 32;

struct SumOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// Butterfly reduction: every lane ends with the warp's result.
template <class Op>
__device__ inline float warp_reduce(float v, Op op) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Reduction over the whole block (blockDim.x a multiple of 32, at most 32 warps); every thread gets the
// same value, since each one combines the warps' partials in the same order. `partials` is shared
// scratch of blockDim.x / 32 floats. Contains __syncthreads(): call it from every thread, and shared
// memory written before the call is visible to the whole block after it.
template <class Op>
__device__ inline float block_reduce(float v, float* partials, Op op) {
  const int warp = static_cast<int>(threadIdx.x) / kWarp, lane = static_cast<int>(threadIdx.x) % kWarp;
  const int n_warps = static_cast<int>(blockDim.x) / kWarp;
  v = warp_reduce(v, op);
  __syncthreads();  // partials may still be read by the previous reduction
  if (lane == 0) partials[warp] = v;
  __syncthreads();
  float r = partials[0];
  for (int w = 1; w < n_warps; ++w) r = op(r, partials[w]);
  return r;
}

// Element-wise kernels run grid-stride loops of kElementThreads threads; the grid is capped so one
// launch never exceeds the hardware limit, however large n is.
inline constexpr int kElementThreads = 256;
inline unsigned element_blocks(int64_t n) {
  const int64_t blocks = (n + kElementThreads - 1) / kElementThreads;
  return static_cast<unsigned>(std::min<int64_t>(blocks, int64_t{1} << 20));
}

}  // namespace lords::cuda::rt
