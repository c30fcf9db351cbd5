// The fixed-order finish of the per-block partial sums (kernel_util.cuh).
#include "lords/cuda/cuda_check.h"
#include "lords/cuda/quant/kernel_util.cuh"

namespace lords::cuda::qk {
namespace {

// One block of kSumBlocks threads: thread b holds partial b, block_sum adds them in a fixed tree.
__global__ void finish_sums_kernel(const double* __restrict__ partials, int n_blocks, int n_sums,
                                   double* __restrict__ out) {
  for (int c = 0; c < n_sums; ++c) {
    const int b = static_cast<int>(threadIdx.x);
    const double v = b < n_blocks ? partials[c * kSumBlocks + b] : 0.0;
    const double total = block_sum(v);
    if (threadIdx.x == 0) out[c] = total;
  }
}

}  // namespace

void finish_sums(SumScratch sum, int n_blocks, int n_sums, cudaStream_t stream) {
  finish_sums_kernel<<<1, kSumBlocks, 0, stream>>>(sum.partials, n_blocks, n_sums, sum.out);
  LORDS_CUDA_CHECK_LAUNCH();
}

}  // namespace lords::cuda::qk
