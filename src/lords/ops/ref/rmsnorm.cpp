// Reference RMSNorm: scalar, fp64 sum of squares (see ops/rmsnorm.h).
#include "lords/ops/rmsnorm.h"

#include <cmath>

#include "lords/core/error.h"

namespace lords::ops::ref {

template <class T>
void rmsnorm_rows(T* y, T* rstd, const T* x, const T* w, int64_t M, int64_t D, float eps) {
  LORDS_ASSERT(M >= 0 && D > 0 && eps >= 0.0f);
  for (int64_t m = 0; m < M; ++m) {
    const T* xr = x + m * D;
    T* yr = y + m * D;
    double ss = 0;
    for (int64_t d = 0; d < D; ++d) ss += static_cast<double>(xr[d]) * xr[d];
    // The scale is rounded to T (fp32 like HF's torch.rsqrt on a fp32 variance).
    const T r = static_cast<T>(1.0 / std::sqrt(ss / static_cast<double>(D) + static_cast<double>(eps)));
    if (rstd) rstd[m] = r;
    for (int64_t d = 0; d < D; ++d) yr[d] = xr[d] * r * w[d];
  }
}

template void rmsnorm_rows<float>(float*, float*, const float*, const float*, int64_t, int64_t, float);
template void rmsnorm_rows<double>(double*, double*, const double*, const double*, int64_t, int64_t, float);

void rmsnorm(float* y, const float* x, const float* w, int64_t M, int64_t D, float eps) {
  rmsnorm_rows<float>(y, nullptr, x, w, M, D, eps);
}

}  // namespace lords::ops::ref
