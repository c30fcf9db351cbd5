// RMSNorm (see rmsnorm.h): one block per row. Pass 1 sums squares (each thread a strided slice, then a
// block reduction), pass 2 scales. Each thread rewrites exactly the elements it read, so y == x is safe.
#include "lords/cuda/ops/rmsnorm.h"

#include "lords/cuda/ops/launch_assert.h"
#include "lords/cuda/cuda_check.h"
#include "lords/cuda/ops/kernel_util.cuh"

namespace lords::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void rmsnorm_kernel(float* y, float* rstd_out, const float* x, const float* w, int64_t D, float eps) {
  __shared__ float partials[kThreads / rt::kWarp];
  const int64_t m = blockIdx.x;
  const float* xr = x + m * D;
  float* yr = y + m * D;
  float ss = 0.0f;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) ss += xr[d] * xr[d];
  ss = rt::block_reduce(ss, partials, rt::SumOp{});
  // Correctly rounded sqrt and division (no fast-math), like the cpu kernel's 1 / std::sqrt.
  const float rstd = 1.0f / sqrtf(ss / static_cast<float>(D) + eps);
  if (rstd_out && threadIdx.x == 0) rstd_out[m] = rstd;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) yr[d] = xr[d] * rstd * w[d];
}

// dx = rstd (w dy) - x rstd^3 sum_d(w dy x) / D: one block per row, the row sum by block reduction. Each
// thread reads then writes its own elements, so dx may alias dy.
__global__ void rmsnorm_bwd_kernel(float* dx, const float* dy, const float* x, const float* w, const float* rstd,
                                   int64_t D) {
  __shared__ float partials[kThreads / rt::kWarp];
  const int64_t m = blockIdx.x;
  const float *xr = x + m * D, *dyr = dy + m * D;
  float dot = 0.0f;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) dot += w[d] * dyr[d] * xr[d];
  dot = rt::block_reduce(dot, partials, rt::SumOp{});
  const float r = rstd[m], c = r * r * r * dot / static_cast<float>(D);
  float* dxr = dx + m * D;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) dxr[d] = r * w[d] * dyr[d] - xr[d] * c;
}

}  // namespace

void rmsnorm(float* y, const float* x, const float* w, int64_t M, int64_t D, float eps, cudaStream_t stream) {
  LORDS_ASSERT(M >= 0 && D > 0 && eps >= 0.0f);
  if (M == 0) return;
  rmsnorm_kernel<<<static_cast<unsigned>(M), kThreads, 0, stream>>>(y, nullptr, x, w, D, eps);
  LORDS_CUDA_CHECK_LAUNCH();
}

void rmsnorm_fwd(float* y, float* rstd, const float* x, const float* w, int64_t M, int64_t D, float eps,
                 cudaStream_t stream) {
  LORDS_ASSERT(M >= 0 && D > 0 && eps >= 0.0f && rstd);
  if (M == 0) return;
  rmsnorm_kernel<<<static_cast<unsigned>(M), kThreads, 0, stream>>>(y, rstd, x, w, D, eps);
  LORDS_CUDA_CHECK_LAUNCH();
}

void rmsnorm_bwd(float* dx, const float* dy, const float* x, const float* w, const float* rstd, int64_t M, int64_t D,
                 cudaStream_t stream) {
  LORDS_ASSERT(M >= 0 && D > 0);
  if (M == 0) return;
  rmsnorm_bwd_kernel<<<static_cast<unsigned>(M), kThreads, 0, stream>>>(dx, dy, x, w, rstd, D);
  LORDS_CUDA_CHECK_LAUNCH();
}

}  // namespace lords::cuda
