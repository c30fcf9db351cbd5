// Dense fp16 linear (see matmul.h). cuBLAS is column-major: the row-major Y (M, N) is the column-major
// Y^T (N, M) = W (N, K) · X^T (K, M), where the row-major W (N, K) is a column-major (K, N) matrix read
// transposed (op T, lda K) and the row-major X (M, K) a column-major (K, M) one read as is (op N, ldb K).
#include "lords/cuda/ops/matmul.h"

#include <limits>

#include "lords/core/error.h"
#include "lords/cuda/cuda_check.h"
#include "lords/cuda/ops/add.h"

namespace lords::cuda {

void matmul_f16(float* Y, const __half* X, const __half* W, const float* bias, int64_t M, int64_t N, int64_t K,
                const BlasHandles& blas) {
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  LORDS_ASSERT(M >= 0 && N > 0 && K > 0 && M <= kMax && N <= kMax && K <= kMax);
  if (M == 0) return;
  const float alpha = 1.0f, beta = 0.0f;
  LORDS_CUBLAS_CHECK(cublasGemmEx(blas.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(N), static_cast<int>(M),
                                  static_cast<int>(K), &alpha, W, CUDA_R_16F, static_cast<int>(K), X, CUDA_R_16F,
                                  static_cast<int>(K), &beta, Y, CUDA_R_32F, static_cast<int>(N), CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT));
  if (bias != nullptr) add_bias(Y, bias, M, N, blas.stream());
}

}  // namespace lords::cuda
