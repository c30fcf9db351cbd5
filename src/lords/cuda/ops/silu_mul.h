// SwiGLU gate on the GPU (ops/silu_mul.h): out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)),
// fp32 with the accurate expf. Device memory; out may alias gate or up.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace lords::cuda {

// out (n), gate (n), up (n)
void silu_mul(float* out, const float* gate, const float* up, int64_t n, cudaStream_t stream);

// Training (train/grad_silu_mul.h): dgate = dout up silu'(gate), dup = dout silu(gate); outputs may alias
// inputs.
void silu_mul_bwd(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n,
                  cudaStream_t stream);

}  // namespace lords::cuda
