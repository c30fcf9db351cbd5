// RoPE (see rope.h): one block per token. The block first tabulates cos/sin of its Dh/2 angles in shared
// memory (fp64 math, rounded to fp32), then rotates every head with them.
#include "lords/cuda/ops/rope.h"

#include "lords/cuda/ops/launch_assert.h"
#include "lords/cuda/cuda_check.h"
#include "lords/ops/attention.h"

namespace lords::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kMaxHalf = static_cast<int>(ops::kMaxHeadDim / 2);

// Token t sits at position p0 + t % seq_len; sign -1 rotates by the negated angle (the transpose).
__global__ void rope_kernel(float* x, int64_t p0, const int64_t* p0_dev, int64_t seq_len, float sign,
                            const float* inv_freq, int64_t H, int64_t Dh) {
  __shared__ float cos_a[kMaxHalf], sin_a[kMaxHalf];
  if (p0_dev) p0 = *p0_dev;
  const int64_t t = blockIdx.x, half = Dh / 2;
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    const double a = static_cast<double>(p0 + t % seq_len) * static_cast<double>(inv_freq[i]);
    cos_a[i] = static_cast<float>(cos(a));
    sin_a[i] = sign * static_cast<float>(sin(a));
  }
  __syncthreads();
  float* xt = x + t * H * Dh;
  for (int64_t e = threadIdx.x; e < H * half; e += blockDim.x) {
    const int64_t h = e / half, i = e % half;
    float* v = xt + h * Dh;
    const float x1 = v[i], x2 = v[i + half], c = cos_a[i], s = sin_a[i];
    v[i] = x1 * c - x2 * s;
    v[i + half] = x2 * c + x1 * s;
  }
}

}  // namespace

void rope(float* x, int64_t p0, const float* inv_freq, int64_t T, int64_t H, int64_t Dh, cudaStream_t stream,
          const int64_t* p0_dev) {
  LORDS_ASSERT(T >= 0 && p0 >= 0 && H > 0 && Dh > 0 && Dh % 2 == 0 && Dh <= ops::kMaxHeadDim);
  if (T == 0) return;
  rope_kernel<<<static_cast<unsigned>(T), kThreads, 0, stream>>>(x, p0, p0_dev, T, 1.0f, inv_freq, H, Dh);
  LORDS_CUDA_CHECK_LAUNCH();
}

void rope_sequences(float* x, int64_t n_seq, int64_t T, bool inverse, const float* inv_freq, int64_t H, int64_t Dh,
                    cudaStream_t stream) {
  LORDS_ASSERT(n_seq >= 0 && T >= 1 && H > 0 && Dh > 0 && Dh % 2 == 0 && Dh <= ops::kMaxHeadDim);
  if (n_seq == 0) return;
  rope_kernel<<<static_cast<unsigned>(n_seq * T), kThreads, 0, stream>>>(x, 0, nullptr, T, inverse ? -1.0f : 1.0f, inv_freq,
                                                                          H, Dh);
  LORDS_CUDA_CHECK_LAUNCH();
}

}  // namespace lords::cuda
