// fp32 -> fp16 (see convert.h), element-wise.
#include "lords/cuda/ops/convert.h"

#include "lords/cuda/ops/launch_assert.h"
#include "lords/cuda/cuda_check.h"
#include "lords/cuda/ops/kernel_util.cuh"

namespace lords::cuda {
namespace {

__global__ void convert_f32_to_f16_kernel(__half* out, const float* in, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = __float2half_rn(in[i]);
}

}  // namespace

void convert_f32_to_f16(__half* out, const float* in, int64_t n, cudaStream_t stream) {
  LORDS_ASSERT(n >= 0);
  if (n == 0) return;
  convert_f32_to_f16_kernel<<<rt::element_blocks(n), rt::kElementThreads, 0, stream>>>(out, in, n);
  LORDS_CUDA_CHECK_LAUNCH();
}

}  // namespace lords::cuda
