// Residual add and bias add (see add.h), element-wise grid-stride loops.
#include "lords/cuda/ops/add.h"

#include "lords/cuda/ops/launch_assert.h"
#include "lords/cuda/cuda_check.h"
#include "lords/cuda/ops/kernel_util.cuh"

namespace lords::cuda {
namespace {

__global__ void add_inplace_kernel(float* x, const float* y, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    x[i] += y[i];
}

__global__ void add_bias_kernel(float* Y, const float* bias, int64_t n, int64_t N) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    Y[i] += bias[i % N];
}

}  // namespace

void add_inplace(float* x, const float* y, int64_t n, cudaStream_t stream) {
  LORDS_ASSERT(n >= 0);
  if (n == 0) return;
  add_inplace_kernel<<<rt::element_blocks(n), rt::kElementThreads, 0, stream>>>(x, y, n);
  LORDS_CUDA_CHECK_LAUNCH();
}

void add_bias(float* Y, const float* bias, int64_t M, int64_t N, cudaStream_t stream) {
  LORDS_ASSERT(M >= 0 && N > 0);
  if (M == 0) return;
  add_bias_kernel<<<rt::element_blocks(M * N), rt::kElementThreads, 0, stream>>>(Y, bias, M * N, N);
  LORDS_CUDA_CHECK_LAUNCH();
}

}  // namespace lords::cuda
