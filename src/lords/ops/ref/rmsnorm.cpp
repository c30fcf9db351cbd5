// Reference RMSNorm: scalar, fp64 sum of squares (see ops/rmsnorm.h).
#include "lords/ops/rmsnorm.h"

#include <cmath>

#include "lords/core/error.h"

namespace lords::ops::ref {

void rmsnorm(float* y, const float* x, const float* w, int64_t M, int64_t D, float eps) {
  LORDS_ASSERT(M >= 0 && D > 0 && eps >= 0.0f);
  for (int64_t m = 0; m < M; ++m) {
    const float* xr = x + m * D;
    float* yr = y + m * D;
    double ss = 0;
    for (int64_t d = 0; d < D; ++d) ss += static_cast<double>(xr[d]) * xr[d];
    // The scale is rounded to fp32 like HF's torch.rsqrt on a fp32 variance.
    const float rstd = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(D) + eps));
    for (int64_t d = 0; d < D; ++d) yr[d] = xr[d] * rstd * w[d];
  }
}

}  // namespace lords::ops::ref
