// Block absmax and block-wise RTN codes on the GPU (quant/blockwise.cpp): s = max |w| over each block
// of G along a row, rounded through the storage dtype before any code is chosen; q = nearest level of
// w / s. Max is exact and the division IEEE, so codes and scales equal the CPU's bit for bit.
#include "lords/cuda/cuda_check.h"
#include "lords/cuda/quant/quant_kernels.h"
#include "lords/cuda/quant/kernel_util.cuh"

namespace lords::cuda::qk {
namespace {

// One warp per block (n, j): lanes stride the block's elements (coalesced), then a shuffle max. fmaxf
// skips NaN like the CPU's std::max(m, |w|) does.
__global__ void block_absmax_kernel(float* __restrict__ s, const float* __restrict__ W, int64_t N, int64_t K,
                                    int64_t G, DType round) {
  const int64_t nb = (K + G - 1) / G;
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t b = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; b < N * nb; b += warps) {
    const int64_t n = b / nb, j = b % nb;
    const int64_t k0 = j * G, len = G < K - k0 ? G : K - k0;
    const float* w = W + n * K + k0;
    float m = 0.0f;
    for (int64_t k = lane; k < len; k += 32) m = fmaxf(m, fabsf(w[k]));
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if (lane == 0) s[b] = round_dev(m, round);
  }
}

// Rows are spread over a fixed grid (deterministic sums); threads stride a row's columns.
__global__ void rtn_codes_kernel(uint8_t* __restrict__ codes, double* __restrict__ partials,
                                 const float* __restrict__ W, const float* __restrict__ s, int64_t N, int64_t K,
                                 int64_t G, GpuCodebook cb) {
  __shared__ float lv[16], mid[15];
  if (threadIdx.x < 16) lv[threadIdx.x] = cb.levels[threadIdx.x];
  if (threadIdx.x < 15) mid[threadIdx.x] = cb.mid[threadIdx.x];
  __syncthreads();
  const int64_t nb = (K + G - 1) / G;
  double err = 0.0, wsq = 0.0;
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
      const float w = W[n * K + k], sc = s[n * nb + k / G];
      const uint8_t c = gpu_code(w, sc, mid, cb.n_levels - 1, cb.zero);
      codes[n * K + k] = c;
      const double d = static_cast<double>(w) - static_cast<double>(lv[c] * sc);
      err += d * d;
      wsq += static_cast<double>(w) * w;
    }
  }
  const double e = block_sum(err), q = block_sum(wsq);
  if (threadIdx.x == 0) {
    partials[blockIdx.x] = e;
    partials[kSumBlocks + blockIdx.x] = q;
  }
}

}  // namespace

void block_absmax(float* s, const float* W, int64_t N, int64_t K, int64_t G, DType round, cudaStream_t stream) {
  const int64_t warps = N * ((K + G - 1) / G);
  const int64_t blocks = (warps + kThreads / 32 - 1) / (kThreads / 32);
  const int grid = static_cast<int>(blocks < 65536 ? blocks : 65536);
  block_absmax_kernel<<<grid, kThreads, 0, stream>>>(s, W, N, K, G, round);
  LORDS_CUDA_CHECK_LAUNCH();
}

void rtn_codes(uint8_t* codes, const float* W, const float* s, int64_t N, int64_t K, int64_t G,
               const GpuCodebook& cb, SumScratch sum, cudaStream_t stream) {
  const int grid = static_cast<int>(N < kSumBlocks ? N : kSumBlocks);
  rtn_codes_kernel<<<grid, kThreads, 0, stream>>>(codes, sum.partials, W, s, N, K, G, cb);
  LORDS_CUDA_CHECK_LAUNCH();
  finish_sums(sum, grid, 2, stream);
}

}  // namespace lords::cuda::qk
