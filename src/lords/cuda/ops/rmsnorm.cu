// RMSNorm (see rmsnorm.h): one block per row. Pass 1 sums squares (each thread a strided slice, then a
// block reduction), pass 2 scales. Each thread rewrites exactly the elements it read, so y == x is safe.
#include "lords/cuda/ops/rmsnorm.h"

#include "lords/cuda/ops/launch_assert.h"
#include "lords/cuda/cuda_check.h"
#include "lords/cuda/ops/kernel_util.cuh"

namespace lords::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void rmsnorm_kernel(float* y, const float* x, const float* w, int64_t D, float eps) {
  __shared__ float partials[kThreads / rt::kWarp];
  const int64_t m = blockIdx.x;
  const float* xr = x + m * D;
  float* yr = y + m * D;
  float ss = 0.0f;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) ss += xr[d] * xr[d];
  ss = rt::block_reduce(ss, partials, rt::SumOp{});
  // Correctly rounded sqrt and division (no fast-math), like the cpu kernel's 1 / std::sqrt.
  const float rstd = 1.0f / sqrtf(ss / static_cast<float>(D) + eps);
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) yr[d] = xr[d] * rstd * w[d];
}

}  // namespace

void rmsnorm(float* y, const float* x, const float* w, int64_t M, int64_t D, float eps, cudaStream_t stream) {
  LORDS_ASSERT(M >= 0 && D > 0 && eps >= 0.0f);
  if (M == 0) return;
  rmsnorm_kernel<<<static_cast<unsigned>(M), kThreads, 0, stream>>>(y, x, w, D, eps);
  LORDS_CUDA_CHECK_LAUNCH();
}

}  // namespace lords::cuda
