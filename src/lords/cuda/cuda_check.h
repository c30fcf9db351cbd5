// Error checks for CUDA runtime, cuBLAS and cuSOLVER calls: every failure becomes a lords::Error of
// kind Cuda naming the call, the file:line and the library's own error string. Kernel launches are
// followed by LORDS_CUDA_CHECK_LAUNCH() so a bad launch configuration is caught where it happens.
#pragma once

#include <cuda_runtime.h>

namespace lords::cuda {

[[noreturn]] void fail_cuda(cudaError_t err, const char* expr, const char* file, int line);
[[noreturn]] void fail_cublas(int status, const char* expr, const char* file, int line);
[[noreturn]] void fail_cusolver(int status, const char* expr, const char* file, int line);

}  // namespace lords::cuda

#define LORDS_CUDA_CHECK(expr)                                                        \
  do {                                                                                \
    const cudaError_t lords_err_ = (expr);                                            \
    if (lords_err_ != cudaSuccess) ::lords::cuda::fail_cuda(lords_err_, #expr, __FILE__, __LINE__); \
  } while (0)

#define LORDS_CUDA_CHECK_LAUNCH() LORDS_CUDA_CHECK(cudaGetLastError())

#define LORDS_CUBLAS_CHECK(expr)                                                        \
  do {                                                                                  \
    const int lords_st_ = static_cast<int>(expr);                                       \
    if (lords_st_ != 0) ::lords::cuda::fail_cublas(lords_st_, #expr, __FILE__, __LINE__); \
  } while (0)

#define LORDS_CUSOLVER_CHECK(expr)                                                        \
  do {                                                                                    \
    const int lords_st_ = static_cast<int>(expr);                                         \
    if (lords_st_ != 0) ::lords::cuda::fail_cusolver(lords_st_, #expr, __FILE__, __LINE__); \
  } while (0)
