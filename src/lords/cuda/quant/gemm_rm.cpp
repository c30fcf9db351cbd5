#include "lords/cuda/quant/gemm_rm.h"

#include <limits>

#include "lords/core/error.h"
#include "lords/cuda/cuda_check.h"

namespace lords::cuda {

void gemm_rm(cublasHandle_t handle, int64_t M, int64_t N, int64_t K, RowMajor a, RowMajor b, float* C, int64_t ldc,
             float alpha, float beta) {
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  LORDS_CHECK(M <= kMax && N <= kMax && K <= kMax && a.ld <= kMax && b.ld <= kMax && ldc <= kMax,
              ErrorKind::Unsupported, "[gemm_rm] ({} x {}) x ({} x {}) exceeds cuBLAS's 32-bit sizes", M, K, K, N);
  LORDS_CUBLAS_CHECK(cublasSgemm(handle, b.op, a.op, static_cast<int>(N), static_cast<int>(M), static_cast<int>(K),
                                 &alpha, b.p, static_cast<int>(b.ld), a.p, static_cast<int>(a.ld), &beta, C,
                                 static_cast<int>(ldc)));
}

}  // namespace lords::cuda
