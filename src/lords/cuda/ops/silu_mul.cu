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

// silu'(g) = s + g s (1 - s), s = sigmoid(g): the formula of train::cpu::silu_mul_bwd. All loads come
// first, so the outputs may alias the inputs.
__global__ void silu_mul_bwd_kernel(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                                    int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = gate[i], u = up[i], dy = dout[i];
    const float s = 1.0f / (1.0f + expf(-g));
    dgate[i] = dy * u * (s * (1.0f + g * (1.0f - s)));
    dup[i] = dy * g * s;
  }
}

}  // namespace

void silu_mul_bwd(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n,
                  cudaStream_t stream) {
  LORDS_ASSERT(n >= 0);
  if (n == 0) return;
  silu_mul_bwd_kernel<<<rt::element_blocks(n), rt::kElementThreads, 0, stream>>>(dgate, dup, dout, gate, up, n);
  LORDS_CUDA_CHECK_LAUNCH();
}

void silu_mul(float* out, const float* gate, const float* up, int64_t n, cudaStream_t stream) {
  LORDS_ASSERT(n >= 0);
  if (n == 0) return;
  silu_mul_kernel<<<rt::element_blocks(n), rt::kElementThreads, 0, stream>>>(out, gate, up, n);
  LORDS_CUDA_CHECK_LAUNCH();
}

}  // namespace lords::cuda
