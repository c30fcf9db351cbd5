// Causal GQA attention (see attention.h), written to be obviously right rather than fast: one block per
// (query token, head). Keys are visited in tiles of kTile; each tile's scores go to shared memory, then
//   m' = max(m, max_j s_j),  p_j = exp(s_j - m'),  l' = l e^(m - m') + sum_j p_j,
//   acc' = acc e^(m - m') + sum_j p_j v_j
// (the online softmax of flash attention, with a whole tile per step), so any context length fits in a
// fixed 4 KiB of scores. Scores: each warp takes every kWarps-th key, its lanes split the dot product
// over Dh. Values: each thread owns output dims d = tid, tid + kThreads, ... and walks the tile's keys,
// so consecutive threads read consecutive floats of a value row.
#include "lords/cuda/ops/attention.h"

#include <cmath>

#include "lords/cuda/ops/launch_assert.h"
#include "lords/cuda/cuda_check.h"
#include "lords/cuda/ops/kernel_util.cuh"

namespace lords::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / rt::kWarp;
constexpr int kTile = 1024;                                              // keys per shared-memory tile
constexpr int kDimsPerThread = static_cast<int>(ops::kMaxHeadDim) / kThreads;  // accumulators per thread
static_assert(ops::kMaxHeadDim % kThreads == 0);

__global__ void attention_kernel(float* out, const float* q, const float* k_cache, const float* v_cache, int64_t H,
                                 int64_t Hkv, int64_t Dh, int64_t p0, const int64_t* p0_dev, float scale) {
  if (p0_dev) p0 = *p0_dev;
  __shared__ float q_s[ops::kMaxHeadDim];  // this row's query
  __shared__ float scores[kTile];          // scores, then exp(score - max), of the current tile
  __shared__ float partials[kWarps];
  const int tid = static_cast<int>(threadIdx.x), warp = tid / rt::kWarp, lane = tid % rt::kWarp;
  const int64_t t = blockIdx.x / H, h = blockIdx.x % H;
  const int64_t g = h / (H / Hkv), row = Hkv * Dh;  // kv head; floats per cached position
  const int64_t n_keys = p0 + t + 1;                // causal: keys 0..p0+t
  const float* k_head = k_cache + g * Dh;
  const float* v_head = v_cache + g * Dh;

  const float* qv = q + (t * H + h) * Dh;
  for (int64_t d = tid; d < Dh; d += kThreads) q_s[d] = qv[d];
  float acc[kDimsPerThread] = {};
  float m = -INFINITY, l = 0.0f;  // running max and sum of exp(score - m)
  __syncthreads();

  for (int64_t j0 = 0; j0 < n_keys; j0 += kTile) {
    const int n = static_cast<int>(n_keys - j0 < kTile ? n_keys - j0 : kTile);
    // 1. Scores of the tile.
    for (int j = warp; j < n; j += kWarps) {
      const float* kv = k_head + (j0 + j) * row;
      float s = 0.0f;
      for (int64_t d = lane; d < Dh; d += rt::kWarp) s += q_s[d] * kv[d];
      s = rt::warp_reduce(s, rt::SumOp{});
      if (lane == 0) scores[j] = s * scale;
    }
    __syncthreads();
    // 2. New running max; the tile's probabilities relative to it, and their sum.
    float tile_max = -INFINITY;
    for (int j = tid; j < n; j += kThreads) tile_max = fmaxf(tile_max, scores[j]);
    const float m_new = fmaxf(m, rt::block_reduce(tile_max, partials, rt::MaxOp{}));
    float sum = 0.0f;
    for (int j = tid; j < n; j += kThreads) {
      const float p = expf(scores[j] - m_new);
      scores[j] = p;
      sum += p;
    }
    sum = rt::block_reduce(sum, partials, rt::SumOp{});  // also publishes the p_j of every thread
    const float correction = expf(m - m_new);                    // 0 on the first tile (m = -inf)
    l = l * correction + sum;
    m = m_new;
    // 3. Rescale the accumulators and add the tile's weighted values.
#pragma unroll
    for (int i = 0; i < kDimsPerThread; ++i) {  // unrolled, so acc stays in registers
      const int64_t d = tid + static_cast<int64_t>(i) * kThreads;
      if (d < Dh) {
        float a = acc[i] * correction;
        for (int j = 0; j < n; ++j) a += scores[j] * v_head[(j0 + j) * row + d];
        acc[i] = a;
      }
    }
    __syncthreads();  // the next tile overwrites scores
  }
  float* o = out + (t * H + h) * Dh;
#pragma unroll
  for (int i = 0; i < kDimsPerThread; ++i) {
    const int64_t d = tid + static_cast<int64_t>(i) * kThreads;
    if (d < Dh) o[d] = acc[i] / l;
  }
}

__global__ void kv_append_kernel(float* k_cache, float* v_cache, const float* k_new, const float* v_new,
                                 const int64_t* p0_dev, int64_t row) {
  const int64_t p0 = *p0_dev;
  for (int64_t i = threadIdx.x; i < row; i += blockDim.x) {
    k_cache[p0 * row + i] = k_new[i];
    v_cache[p0 * row + i] = v_new[i];
  }
}

}  // namespace

void kv_append(float* k_cache, float* v_cache, const float* k_new, const float* v_new, const int64_t* p0_dev,
               int64_t row, cudaStream_t stream) {
  LORDS_ASSERT(row > 0 && p0_dev);
  kv_append_kernel<<<1, 256, 0, stream>>>(k_cache, v_cache, k_new, v_new, p0_dev, row);
  LORDS_CUDA_CHECK_LAUNCH();
}

void attention(float* out, const float* q, const float* k_cache, const float* v_cache, const ops::AttentionShape& s,
               cudaStream_t stream, const int64_t* p0_dev) {
  LORDS_ASSERT(s.T >= 0 && s.p0 >= 0 && s.H > 0 && s.Hkv > 0 && s.H % s.Hkv == 0 && s.Dh > 0 &&
               s.Dh <= ops::kMaxHeadDim);
  if (s.T == 0) return;
  const int64_t blocks = s.T * s.H;
  LORDS_ASSERT(blocks <= 0x7fffffff);
  const auto scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.Dh)));
  attention_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(out, q, k_cache, v_cache, s.H, s.Hkv, s.Dh,
                                                                          s.p0, p0_dev, scale);
  LORDS_CUDA_CHECK_LAUNCH();
}

}  // namespace lords::cuda
