// Library handles bound to one stream: cuBLAS (with tensor-op math allowed) and cuSOLVER dense.
// One per thread of work; creating them is slow, so owners keep them.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

namespace lords::cuda {

class BlasHandles {
 public:
  explicit BlasHandles(cudaStream_t stream = nullptr);
  ~BlasHandles();
  BlasHandles(const BlasHandles&) = delete;
  BlasHandles& operator=(const BlasHandles&) = delete;

  cublasHandle_t cublas() const { return cublas_; }
  cusolverDnHandle_t cusolver() const;  // created on first use
  cudaStream_t stream() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  mutable cusolverDnHandle_t cusolver_ = nullptr;
};

}  // namespace lords::cuda
