// RMSNorm (HF LlamaRMSNorm), training form: the forward also saves the per-row scale for backward.
//   forward:  rstd[m] = 1 / sqrt(mean_d x[m,d]^2 + eps),   y[m,d] = x[m,d] * rstd[m] * w[d]
//   backward: with xhat = x * rstd and c[m] = (1/D) sum_d dy[m,d] w[d] xhat[m,d],
//             dx[m,d] = rstd[m] * (w[d] dy[m,d] - xhat[m,d] c[m])      (OVERWRITTEN, activation grad)
//             dw[d]  += sum_m dy[m,d] xhat[m,d]                         (ACCUMULATED, parameter grad)
// M = rows (tokens), D = hidden size. rstd (M) is the cache the backward reads; it is never recomputed.
//   ref:: templated on the float type; fp64 sums (sum of squares, c, dw) whatever T is. The forward is
//         lords::ops::ref::rmsnorm_rows, the inference reference's own row loop.
//   cpu:: fp32 elementwise math, fp32 row sums, fp64 column sums for dw; rows in parallel (OpenMP).
// No output may alias an input.
#pragma once

#include <cstdint>

namespace lords::train {

namespace ref {
// y (M, D), rstd (M), x (M, D), w (D)
template <class T>
void rmsnorm_fwd(T* y, T* rstd, const T* x, const T* w, int64_t M, int64_t D, float eps);
// dx (M, D) overwritten, dw (D) accumulated, dy (M, D), x (M, D), w (D), rstd (M) from rmsnorm_fwd
template <class T>
void rmsnorm_bwd(T* dx, T* dw, const T* dy, const T* x, const T* w, const T* rstd, int64_t M, int64_t D);
}  // namespace ref

namespace cpu {
void rmsnorm_fwd(float* y, float* rstd, const float* x, const float* w, int64_t M, int64_t D, float eps);
void rmsnorm_bwd(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd, int64_t M,
                 int64_t D);
}  // namespace cpu

}  // namespace lords::train
