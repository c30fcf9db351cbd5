// RMSNorm on the GPU (ops/rmsnorm.h): y[m,:] = x[m,:] * rsqrt(mean_d(x[m,d]^2) + eps) * w, all fp32
// (sum of squares by a block tree reduction). Device memory; y may alias x.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace lords::cuda {

// y (M, D), x (M, D), w (D)
void rmsnorm(float* y, const float* x, const float* w, int64_t M, int64_t D, float eps, cudaStream_t stream);

}  // namespace lords::cuda
