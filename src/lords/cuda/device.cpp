#include "lords/cuda/device.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <mutex>

#include "lords/core/error.h"
#include "lords/cuda/cuda_check.h"

namespace lords::cuda {

void fail_cuda(cudaError_t err, const char* expr, const char* file, int line) {
  LORDS_FAIL(ErrorKind::Cuda, "[cuda] {} failed: {} ({}) at {}:{}", expr, cudaGetErrorString(err),
             cudaGetErrorName(err), file, line);
}

void fail_cublas(int status, const char* expr, const char* file, int line) {
  LORDS_FAIL(ErrorKind::Cuda, "[cublas] {} failed: {} at {}:{}", expr,
             cublasGetStatusString(static_cast<cublasStatus_t>(status)), file, line);
}

void fail_cusolver(int status, const char* expr, const char* file, int line) {
  LORDS_FAIL(ErrorKind::Cuda, "[cusolver] {} failed with status {} at {}:{}", expr, status, file, line);
}

bool gpu_available() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error so later checks start clean
    return false;
  }
  return n > 0;
}

const DeviceProps& device_props() {
  static DeviceProps props;
  static std::once_flag once;
  std::call_once(once, [] {
    int dev = 0;
    LORDS_CUDA_CHECK(cudaGetDevice(&dev));
    cudaDeviceProp p{};
    LORDS_CUDA_CHECK(cudaGetDeviceProperties(&p, dev));
    props.name = p.name;
    props.sm_count = p.multiProcessorCount;
    props.cc_major = p.major;
    props.cc_minor = p.minor;
    props.global_mem = static_cast<int64_t>(p.totalGlobalMem);
    props.l2_bytes = p.l2CacheSize;
    props.smem_per_block_optin = static_cast<int64_t>(p.sharedMemPerBlockOptin);
  });
  return props;
}

void require_gpu(const char* what) {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    LORDS_FAIL(ErrorKind::Unsupported, "[{}] needs a CUDA GPU: {}", what, cudaGetErrorString(err));
  }
  LORDS_CHECK(n > 0, ErrorKind::Unsupported, "[{}] needs a CUDA GPU: none found", what);
}

}  // namespace lords::cuda
