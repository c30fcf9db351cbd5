// Additions of the runtime on the GPU, fp32, device memory: the residual add x += y, and a bias added
// to every row of a linear's output.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace lords::cuda {

// x (n) += y (n); y must not overlap x unless equal.
void add_inplace(float* x, const float* y, int64_t n, cudaStream_t stream);
// Y (M, N): Y[m, :] += bias (N).
void add_bias(float* Y, const float* bias, int64_t M, int64_t N, cudaStream_t stream);

}  // namespace lords::cuda
