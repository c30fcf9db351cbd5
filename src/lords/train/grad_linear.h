// Dense linear layer, training form: Y (M, N) = X (M, K) W^T (+ bias), W (N, K) as HF nn.Linear stores it.
// Backward:
//   dX  = dY W                (M, K)  OVERWRITTEN, activation grad
//   dW += dY^T X              (N, K)  ACCUMULATED, parameter grad
//   dbias += sum_m dY[m,:]    (N)     ACCUMULATED, parameter grad
// Any of dX, dW, dbias may be null: that gradient is not computed (a frozen base weight under LoRA
// needs only dX; the first layer needs no dX). Outputs must not alias inputs.
//   ref:: templated on the float type, loops with fp64 sums.   fp32 forward: lords::ops::cpu::matmul.
//   cpu:: fp32 cblas_sgemm on tiles of the output, one single-threaded sgemm per OpenMP thread (see
//         ops/cpu/matmul.cpp: a threaded OpenBLAS next to OpenMP regions oversubscribes the cores);
//         dbias column sums in fp64.
#pragma once

#include <cstdint>

namespace lords::train {

struct LinearShape {
  int64_t M = 0;  // rows (tokens)
  int64_t N = 0;  // out features
  int64_t K = 0;  // in features
};

namespace ref {
// Y (M, N), X (M, K), W (N, K), bias (N) or null
template <class T>
void linear_fwd(T* Y, const T* X, const T* W, const T* bias, const LinearShape& s);
// dX (M, K) or null, dW (N, K) or null, dbias (N) or null; dY (M, N), X (M, K), W (N, K)
template <class T>
void linear_bwd(T* dX, T* dW, T* dbias, const T* dY, const T* X, const T* W, const LinearShape& s);
}  // namespace ref

namespace cpu {
void linear_bwd(
    float* dX, float* dW, float* dbias, const float* dY, const float* X, const float* W, const LinearShape& s);
}  // namespace cpu

}  // namespace lords::train
