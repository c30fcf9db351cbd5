// RMSNorm on the GPU (ops/rmsnorm.h): y[m,:] = x[m,:] * rsqrt(mean_d(x[m,d]^2) + eps) * w, all fp32
// (sum of squares by a block tree reduction). Device memory; y may alias x.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace lords::cuda {

// y (M, D), x (M, D), w (D)
void rmsnorm(float* y, const float* x, const float* w, int64_t M, int64_t D, float eps, cudaStream_t stream);

// Training (train/grad_rmsnorm.h): the forward also saves rstd (M), and the backward gives the input
// gradient only (the norm weights are frozen): dx = rstd (w dy) - x rstd^3 sum_d(w dy x) / D. dx may
// alias dy, not x.
void rmsnorm_fwd(float* y, float* rstd, const float* x, const float* w, int64_t M, int64_t D, float eps,
                 cudaStream_t stream);
void rmsnorm_bwd(float* dx, const float* dy, const float* x, const float* w, const float* rstd, int64_t M, int64_t D,
                 cudaStream_t stream);

}  // namespace lords::cuda
