// fp32 -> fp16 conversion on the GPU (round to nearest even, overflow to inf: the same rounding as
// lords::f32_to_fp16 on the host). The runtime keeps activations in fp32 and converts only the input
// of each matmul, which cuBLAS and qmatmul read as fp16. Device memory.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace lords::cuda {

// out (n) fp16, in (n) fp32
void convert_f32_to_f16(__half* out, const float* in, int64_t n, cudaStream_t stream);

}  // namespace lords::cuda
