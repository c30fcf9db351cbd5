#include "lords/cuda/blas_handle.h"

#include "lords/cuda/cuda_check.h"

namespace lords::cuda {

BlasHandles::BlasHandles(cudaStream_t stream) : stream_(stream) {
  LORDS_CUBLAS_CHECK(cublasCreate(&cublas_));
  LORDS_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
}

BlasHandles::~BlasHandles() {
  if (cusolver_) cusolverDnDestroy(cusolver_);
  if (cublas_) cublasDestroy(cublas_);
}

cusolverDnHandle_t BlasHandles::cusolver() const {
  if (!cusolver_) {
    LORDS_CUSOLVER_CHECK(cusolverDnCreate(&cusolver_));
    LORDS_CUSOLVER_CHECK(cusolverDnSetStream(cusolver_, stream_));
  }
  return cusolver_;
}

}  // namespace lords::cuda
