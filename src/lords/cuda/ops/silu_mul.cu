// SwiGLU gate (see silu_mul.h), element-wise.
#include "lords/cuda/ops/silu_mul.h"

#include "lords/cuda/ops/launch_assert.h"
#include "lords/cuda/cuda_check.h"
#include "lords/cuda/ops/kernel_util.cuh"

namespace lords::cuda {
namespace {

// The device twin of ops::silu (host-only there); keep the two formulas identical.
__device__ inline float silu(float g) { return g / (1.0f + expf(-g)); }

__global__ void silu_mul_kernel(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = silu(gate[i]) * up[i];
}

}  // namespace

void silu_mul(float* out, const float* gate, const float* up, int64_t n, cudaStream_t stream) {
  LORDS_ASSERT(n >= 0);
  if (n == 0) return;
  silu_mul_kernel<<<rt::element_blocks(n), rt::kElementThreads, 0, stream>>>(out, gate, up, n);
  LORDS_CUDA_CHECK_LAUNCH();
}

}  // namespace lords::cuda
