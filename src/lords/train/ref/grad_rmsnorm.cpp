// Reference training RMSNorm: forward saving rstd, and its backward (see train/grad_rmsnorm.h).
#include "lords/train/grad_rmsnorm.h"

#include <cmath>

#include "lords/core/error.h"
#include "lords/ops/rmsnorm.h"

namespace lords::train::ref {

template <class T>
void rmsnorm_fwd(T* y, T* rstd, const T* x, const T* w, int64_t M, int64_t D, float eps) {
  // The inference reference's row loop, keeping rstd: ref<float>'s y is bit-identical to ops::ref::rmsnorm.
  ops::ref::rmsnorm_rows<T>(y, rstd, x, w, M, D, eps);
}

template <class T>
void rmsnorm_bwd(T* dx, T* dw, const T* dy, const T* x, const T* w, const T* rstd, int64_t M, int64_t D) {
  LORDS_ASSERT(M >= 0 && D > 0);
  for (int64_t m = 0; m < M; ++m) {
    const T* xr = x + m * D;
    const T* dyr = dy + m * D;
    const double r = rstd[m];
    // y_d = w_d x_d r(x) with r = (mean x^2 + eps)^(-1/2), so dr/dx_k = -r^3 x_k / D. Then
    //   dx_k = term 1 (through x_k directly):  w_k dy_k r
    //        + term 2 (through r):             sum_d dy_d w_d x_d * (-r^3 x_k / D) = -r xhat_k c
    // with xhat = x r and c = (1/D) sum_d dy_d w_d xhat_d.
    double c = 0;
    for (int64_t d = 0; d < D; ++d) c += static_cast<double>(dyr[d]) * w[d] * (xr[d] * r);
    c /= static_cast<double>(D);
    for (int64_t d = 0; d < D; ++d) {
      const double xhat = xr[d] * r;
      dx[m * D + d] = static_cast<T>(r * (static_cast<double>(w[d]) * dyr[d] - xhat * c));
    }
  }
  // dw_d = sum over rows of dy * xhat (y is linear in w); fp64 column sums, then one += per element.
  for (int64_t d = 0; d < D; ++d) {
    double s = 0;
    for (int64_t m = 0; m < M; ++m) s += static_cast<double>(dy[m * D + d]) * x[m * D + d] * rstd[m];
    dw[d] += static_cast<T>(s);
  }
}

template void rmsnorm_fwd<float>(float*, float*, const float*, const float*, int64_t, int64_t, float);
template void rmsnorm_fwd<double>(double*, double*, const double*, const double*, int64_t, int64_t, float);
template void rmsnorm_bwd<float>(
    float*, float*, const float*, const float*, const float*, const float*, int64_t, int64_t);
template void rmsnorm_bwd<double>(
    double*, double*, const double*, const double*, const double*, const double*, int64_t, int64_t);

}  // namespace lords::train::ref
