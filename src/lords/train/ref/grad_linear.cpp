// Reference dense linear, forward and backward (see train/grad_linear.h): plain loops, fp64 sums.
#include "lords/train/grad_linear.h"

#include "lords/core/error.h"

namespace lords::train::ref {

template <class T>
void linear_fwd(T* Y, const T* X, const T* W, const T* bias, const LinearShape& s) {
  LORDS_ASSERT(s.M >= 0 && s.N >= 0 && s.K >= 0);
  for (int64_t m = 0; m < s.M; ++m)
    for (int64_t n = 0; n < s.N; ++n) {
      double acc = bias ? static_cast<double>(bias[n]) : 0.0;
      for (int64_t k = 0; k < s.K; ++k) acc += static_cast<double>(X[m * s.K + k]) * W[n * s.K + k];
      Y[m * s.N + n] = static_cast<T>(acc);
    }
}

template <class T>
void linear_bwd(T* dX, T* dW, T* dbias, const T* dY, const T* X, const T* W, const LinearShape& s) {
  LORDS_ASSERT(s.M >= 0 && s.N >= 0 && s.K >= 0);
  const int64_t M = s.M, N = s.N, K = s.K;
  // Y[m,n] = sum_k X[m,k] W[n,k] + bias[n], so dY[m,n] reaches X[m,k] through W[n,k], W[n,k] through
  // X[m,k], and bias[n] with weight 1.
  if (dX)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t k = 0; k < K; ++k) {
        double acc = 0;
        for (int64_t n = 0; n < N; ++n) acc += static_cast<double>(dY[m * N + n]) * W[n * K + k];
        dX[m * K + k] = static_cast<T>(acc);
      }
  if (dW)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        double acc = 0;
        for (int64_t m = 0; m < M; ++m) acc += static_cast<double>(dY[m * N + n]) * X[m * K + k];
        dW[n * K + k] += static_cast<T>(acc);
      }
  if (dbias)
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0;
      for (int64_t m = 0; m < M; ++m) acc += dY[m * N + n];
      dbias[n] += static_cast<T>(acc);
    }
}

template void linear_fwd<float>(float*, const float*, const float*, const float*, const LinearShape&);
template void linear_fwd<double>(double*, const double*, const double*, const double*, const LinearShape&);
template void linear_bwd<float>(
    float*, float*, float*, const float*, const float*, const float*, const LinearShape&);
template void linear_bwd<double>(
    double*, double*, double*, const double*, const double*, const double*, const LinearShape&);

}  // namespace lords::train::ref
