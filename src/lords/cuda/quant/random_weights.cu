// Counter-based generation: every element hashes (seed, index) with splitmix64, so the result does not
// depend on the launch configuration.
#include "lords/cuda/cuda_check.h"
#include "lords/cuda/quant/random_weights.h"

namespace lords::cuda {
namespace {

__device__ __forceinline__ uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Two uniforms in (0, 1] (never 0, so their logs are finite) from one 64-bit hash.
__device__ __forceinline__ float2 uniforms(uint64_t h) {
  constexpr float kInv24 = 1.0f / 16777216.0f;
  return make_float2(static_cast<float>((h >> 40) + 1) * kInv24,
                     static_cast<float>(((h >> 16) & 0xffffffull) + 1) * kInv24);
}

// A standard normal by Box-Muller.
__device__ __forceinline__ float normal(uint64_t h) {
  const float2 u = uniforms(h);
  return sqrtf(-2.0f * logf(u.x)) * cospif(2.0f * u.y);
}

// Stream tags keep the row, column and element hashes of one seed apart.
constexpr uint64_t kRowTag = 0x1000000000000000ull, kColTag = 0x2000000000000000ull;

__global__ void fill_kernel(float* __restrict__ W, int64_t N, int64_t K, uint64_t seed) {
  const uint64_t key = splitmix64(seed);
  const float inv_sqrt_k = rsqrtf(static_cast<float>(K));
  const int64_t total = N * K;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t n = i / K, k = i % K;
    const float row = expf(0.3f * normal(splitmix64(key ^ kRowTag ^ static_cast<uint64_t>(n))));
    const float col = expf(0.3f * normal(splitmix64(key ^ kColTag ^ static_cast<uint64_t>(k)))) * inv_sqrt_k;
    const float z = normal(splitmix64(key + 2 * static_cast<uint64_t>(i)));
    const float2 u = uniforms(splitmix64(key + 2 * static_cast<uint64_t>(i) + 1));
    // chi^2 with 4 degrees of freedom = the sum of two chi^2_2 = -2 ln(U1 U2); floored so that U1 = U2 = 1
    // cannot give an infinite weight (below 1e-4 has probability ~1e-9).
    const float chi2_4 = fmaxf(-2.0f * logf(u.x * u.y), 1e-4f);
    W[i] = row * col * z * rsqrtf(chi2_4 * 0.25f);
  }
}

}  // namespace

void fill_llm_like_weights(float* W, int64_t N, int64_t K, uint64_t seed, cudaStream_t stream) {
  const int64_t blocks = (N * K + 255) / 256;
  fill_kernel<<<static_cast<int>(blocks < 65536 ? blocks : 65536), 256, 0, stream>>>(W, N, K, seed);
  LORDS_CUDA_CHECK_LAUNCH();
}

}  // namespace lords::cuda
