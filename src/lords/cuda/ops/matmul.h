// Dense linear on the GPU through cuBLAS: Y (M, N) fp32 = X (M, K) fp16 · W^T (+ bias), W (N, K) fp16
// row-major like HF nn.Linear, products accumulated in fp32 (cublasGemmEx, CUBLAS_COMPUTE_32F). The
// runtime's dense weights and every matmul input are fp16; everything else stays fp32.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "lords/cuda/blas_handle.h"

namespace lords::cuda {

// Y (M, N), X (M, K), W (N, K), bias (N) or null; device memory, Y not overlapping X or W. Runs on
// blas.stream(). M, N, K < 2^31.
void matmul_f16(float* Y, const __half* X, const __half* W, const float* bias, int64_t M, int64_t N, int64_t K,
                const BlasHandles& blas);

}  // namespace lords::cuda
