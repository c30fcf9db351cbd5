// CPU training RMSNorm (see train/grad_rmsnorm.h). Forward and dx run over rows in parallel with fp32
// row sums; dw, a sum over all M rows, runs over blocks of columns in parallel with fp64 accumulators
// (an fp32 running sum over thousands of rows would lose digits), so no thread-private copies of dw
// and no reduction across threads are needed.
#include "lords/train/grad_rmsnorm.h"

#include <algorithm>
#include <cmath>

#include "lords/core/error.h"

namespace lords::train::cpu {

namespace {
constexpr int64_t kParallelMin = int64_t{1} << 15;  // elements below which one thread is faster
constexpr int64_t kColBlock = 256;                  // dw columns per task: 2 KiB of fp64 accumulators
}  // namespace

void rmsnorm_fwd(float* y, float* rstd, const float* x, const float* w, int64_t M, int64_t D, float eps) {
  LORDS_ASSERT(M >= 0 && D > 0 && eps >= 0.0f);
#pragma omp parallel for schedule(static) if (M * D >= kParallelMin)
  for (int64_t m = 0; m < M; ++m) {
    const float* xr = x + m * D;
    float* yr = y + m * D;
    float ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t d = 0; d < D; ++d) ss += xr[d] * xr[d];
    const float r = 1.0f / std::sqrt(ss / static_cast<float>(D) + eps);
    rstd[m] = r;
#pragma omp simd
    for (int64_t d = 0; d < D; ++d) yr[d] = xr[d] * r * w[d];
  }
}

void rmsnorm_bwd(float* dx,
                 float* dw,
                 const float* dy,
                 const float* x,
                 const float* w,
                 const float* rstd,
                 int64_t M,
                 int64_t D) {
  LORDS_ASSERT(M >= 0 && D > 0);
  const bool parallel = M * D >= kParallelMin;
  // dx_k = rstd (w_k dy_k - xhat_k c),  c = (1/D) sum_d dy_d w_d xhat_d  (term 1: direct, term 2: via rstd)
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t m = 0; m < M; ++m) {
    const float* xr = x + m * D;
    const float* dyr = dy + m * D;
    float* dxr = dx + m * D;
    const float r = rstd[m];
    float c = 0;
#pragma omp simd reduction(+ : c)
    for (int64_t d = 0; d < D; ++d) c += dyr[d] * w[d] * xr[d];
    c *= r / static_cast<float>(D);  // xhat = x r: r factored out of the sum
#pragma omp simd
    for (int64_t d = 0; d < D; ++d) dxr[d] = r * (w[d] * dyr[d] - xr[d] * r * c);
  }
  // dw_d += sum_m dy[m,d] xhat[m,d]
  const int64_t n_blocks = (D + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t blk = 0; blk < n_blocks; ++blk) {
    const int64_t d0 = blk * kColBlock, nd = std::min(kColBlock, D - d0);
    double acc[kColBlock] = {};
    for (int64_t m = 0; m < M; ++m) {
      const float* dyr = dy + m * D + d0;
      const float* xr = x + m * D + d0;
      const float r = rstd[m];
#pragma omp simd
      for (int64_t d = 0; d < nd; ++d) acc[d] += static_cast<double>(dyr[d] * xr[d] * r);
    }
    for (int64_t d = 0; d < nd; ++d) dw[d0 + d] += static_cast<float>(acc[d]);
  }
}

}  // namespace lords::train::cpu
