// Row-major float GEMM through cuBLAS (which is column-major): C (M, N) = op(a) (M, K) op(b) (K, N).
// A row-major matrix with leading dimension ld is the column-major transpose with the same ld, so
// C^T = op(b)^T op(a)^T is one cublasSgemm with the operands swapped and the ops unchanged. Writing
// every product of the solver through this one function keeps the transposition trick in one place.
#pragma once

#include <cublas_v2.h>

#include <cstdint>

namespace lords::cuda {

// A row-major operand: data, leading dimension (row stride) and whether it enters transposed.
struct RowMajor {
  const float* p;
  int64_t ld;
  cublasOperation_t op;  // CUBLAS_OP_N or CUBLAS_OP_T
};

// C = alpha op(a) op(b) + beta C; C has leading dimension ldc. Dimensions must fit cuBLAS's int.
void gemm_rm(cublasHandle_t handle, int64_t M, int64_t N, int64_t K, RowMajor a, RowMajor b, float* C, int64_t ldc,
             float alpha = 1.0f, float beta = 0.0f);

}  // namespace lords::cuda
