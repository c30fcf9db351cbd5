// Embedding gather (see embedding.h): one block per token, threads over the row.
#include "lords/cuda/ops/embedding.h"

#include "lords/cuda/ops/launch_assert.h"
#include "lords/cuda/cuda_check.h"

namespace lords::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void embedding_kernel(float* out, const float* table, const int32_t* tokens, int64_t V, int64_t D) {
  const int64_t t = blockIdx.x;
  const int64_t id = tokens[t];
  float* o = out + t * D;
  if (id < 0 || id >= V) {
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) o[d] = __int_as_float(0x7fc00000);  // NaN
    return;
  }
  const float* row = table + id * D;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) o[d] = row[d];
}

}  // namespace

void embedding(float* out, const float* table, const int32_t* tokens, int64_t T, int64_t V, int64_t D,
               cudaStream_t stream) {
  LORDS_ASSERT(T >= 0 && V > 0 && D > 0);
  if (T == 0) return;
  embedding_kernel<<<static_cast<unsigned>(T), kThreads, 0, stream>>>(out, table, tokens, V, D);
  LORDS_CUDA_CHECK_LAUNCH();
}

}  // namespace lords::cuda
