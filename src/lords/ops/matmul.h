// Dense fp32 linear layer: Y (M, N) = X (M, K) W^T (+ bias), W (N, K) row-major like HF nn.Linear.
//   ref:: loops with fp64 accumulation (the spec).
//   cpu:: OpenMP only: an AVX2 GEMV for M = 1, tiles of single-threaded cblas_sgemm for M > 1.
// bias may be null. Y must not alias X or W.
#pragma once

#include <cstdint>

namespace lords::ops {

namespace ref {
// Y (M, N), X (M, K), W (N, K), bias (N) or null
void matmul(float* Y, const float* X, const float* W, const float* bias, int64_t M, int64_t N, int64_t K);
}  // namespace ref
namespace cpu {
void matmul(float* Y, const float* X, const float* W, const float* bias, int64_t M, int64_t N, int64_t K);
}  // namespace cpu

}  // namespace lords::ops
