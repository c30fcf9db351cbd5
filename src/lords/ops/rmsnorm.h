// RMSNorm (HF LlamaRMSNorm): y[m,:] = x[m,:] * rsqrt(mean_d(x[m,d]^2) + eps) * w, computed in fp32
// (ref: fp64 sum of squares). M = rows (tokens), D = hidden size. y may alias x (in place).
// Backends assert their preconditions; callers (the runtime) validate shapes.
#pragma once

#include <cstdint>

namespace lords::ops {

namespace ref {
// y (M, D), x (M, D), w (D)
void rmsnorm(float* y, const float* x, const float* w, int64_t M, int64_t D, float eps);
// The same row loop for float or double (the training reference runs it in double for its gradient
// checks), keeping each row's scale in rstd (M) where rstd is not null. rmsnorm() is T = float, no rstd.
template <class T>
void rmsnorm_rows(T* y, T* rstd, const T* x, const T* w, int64_t M, int64_t D, float eps);
}  // namespace ref
namespace cpu {
// Same contract; rows in parallel (OpenMP), AVX2 sum of squares.
void rmsnorm(float* y, const float* x, const float* w, int64_t M, int64_t D, float eps);
}  // namespace cpu

}  // namespace lords::ops
