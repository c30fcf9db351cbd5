// Element-wise kernels of the LoRDS solver on the GPU (quant/lords_solver.cpp, lords_als.cpp): the fused
// Q-step + objective (+ Adam's d f / d S), the final Q-step with the stored-error sum, the ALS inputs,
// the Khatri-Rao outer products, the storage rounding of B and A, and the Adam update. S = B A itself
// comes from cuBLAS (gpu_lords.cpp); these kernels only stream it.
#include "lords/cuda/cuda_check.h"
#include "lords/cuda/quant/kernel_util.cuh"
#include "lords/cuda/quant/quant_kernels.h"

namespace lords::cuda::qk {
namespace {

// The codebook's levels and midpoints in shared memory: indexed per element, they would otherwise be
// dynamic loads from the kernel's parameter space.
struct SharedCodebook {
  float lv[16];
  float mid[15];
};

__device__ __forceinline__ void load_codebook(SharedCodebook* sc, const GpuCodebook& cb) {
  if (threadIdx.x < 16) sc->lv[threadIdx.x] = cb.levels[threadIdx.x];
  if (threadIdx.x < 15) sc->mid[threadIdx.x] = cb.mid[threadIdx.x];
  __syncthreads();
}

__device__ __forceinline__ int64_t first_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// f = sum (L S - W)^2 with E = L S - W in double: L S is exact in double (24 x 24 bits), so E is rounded
// once, as the CPU's fused multiply-subtract. kGrad: g = E L in float (CPU: d E L with d = 1).
template <bool kGrad>
__global__ void lords_eval_kernel(uint8_t* __restrict__ codes, float* __restrict__ g, double* __restrict__ partials,
                                  const float* __restrict__ W, const float* __restrict__ S, int64_t n,
                                  GpuCodebook cb) {
  __shared__ SharedCodebook sc;
  load_codebook(&sc, cb);
  double acc = 0.0;
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const float w = W[i], s = S[i];
    const uint8_t c = gpu_code(w, s, sc.mid, cb.n_levels - 1, cb.zero);
    codes[i] = c;
    const float L = sc.lv[c];
    const double e = static_cast<double>(L) * static_cast<double>(s) - static_cast<double>(w);
    acc += e * e;
    if constexpr (kGrad) g[i] = static_cast<float>(e * static_cast<double>(L));
  }
  const double total = block_sum(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// The error of what is stored: W_hat = L * S rounded to float (dequantize_lords), then (W - W_hat)^2 in double.
__global__ void lords_final_kernel(uint8_t* __restrict__ codes, double* __restrict__ partials,
                                   const float* __restrict__ W, const float* __restrict__ S, int64_t n,
                                   GpuCodebook cb) {
  __shared__ SharedCodebook sc;
  load_codebook(&sc, cb);
  double err = 0.0, wsq = 0.0;
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const float w = W[i], s = S[i];
    const uint8_t c = gpu_code(w, s, sc.mid, cb.n_levels - 1, cb.zero);
    codes[i] = c;
    const double d = static_cast<double>(w) - static_cast<double>(s * sc.lv[c]);
    err += d * d;
    wsq += static_cast<double>(w) * static_cast<double>(w);
  }
  const double e = block_sum(err), q = block_sum(wsq);
  if (threadIdx.x == 0) {
    partials[blockIdx.x] = e;
    partials[kSumBlocks + blockIdx.x] = q;
  }
}

__global__ void normal_inputs_kernel(float* __restrict__ X, float* __restrict__ Y, const float* __restrict__ W,
                                     const uint8_t* __restrict__ codes, int64_t n, GpuCodebook cb) {
  __shared__ SharedCodebook sc;
  load_codebook(&sc, cb);
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const float L = sc.lv[codes[i]];
    X[i] = L * L;
    Y[i] = L * W[i];
  }
}

// One thread writes the whole table: T <= a few thousand entries, once per solve.
__global__ void tri_pairs_kernel(uint32_t* pairs, int r) {
  int t = 0;
  for (int i = 0; i < r; ++i)
    for (int j = i; j < r; ++j) pairs[t++] = static_cast<uint32_t>(i) | (static_cast<uint32_t>(j) << 16);
}

// Consecutive threads write consecutive entries of P's rows (coalesced); F's reads hit L1/L2.
__global__ void outer_products_kernel(float* __restrict__ P, const float* __restrict__ F, int64_t M, int T,
                                      int64_t s_m, int64_t s_i, const uint32_t* __restrict__ pairs) {
  for (int64_t idx = first_index(); idx < M * T; idx += grid_stride()) {
    const int64_t m = idx / T;
    const uint32_t p = pairs[idx % T];
    const int64_t i = p & 0xffffu, j = p >> 16;
    P[idx] = F[m * s_m + i * s_i] * F[m * s_m + j * s_i];
  }
}

__global__ void round_kernel(float* __restrict__ p, int64_t n, DType dtype) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) p[i] = round_dev(p[i], dtype);
}

// The CPU's adam_update, element for element, in float.
__global__ void adam_kernel(float* __restrict__ p, const float* __restrict__ g_raw, float g_scale,
                            float* __restrict__ m, float* __restrict__ v, int64_t n, float step, float bc2_sqrt) {
  constexpr float kBeta1 = 0.9f, kBeta2 = 0.999f, kEps = 1e-8f;
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const float g = g_raw[i] * g_scale;
    const float mi = kBeta1 * m[i] + (1.0f - kBeta1) * g;
    const float vi = kBeta2 * v[i] + (1.0f - kBeta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    p[i] -= step * mi / (sqrtf(vi) / bc2_sqrt + kEps);
  }
}

// Grid of an element-wise kernel without sums: as many blocks as the work needs, capped (grid-stride).
int elem_grid(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 1 ? 1 : blocks > 65536 ? 65536 : blocks);
}

}  // namespace

void lords_eval(uint8_t* codes, float* g, const float* W, const float* S, int64_t n, const GpuCodebook& cb,
                SumScratch sum, cudaStream_t stream) {
  const int grid = sum_grid(n);
  if (g != nullptr) {
    lords_eval_kernel<true><<<grid, kThreads, 0, stream>>>(codes, g, sum.partials, W, S, n, cb);
  } else {
    lords_eval_kernel<false><<<grid, kThreads, 0, stream>>>(codes, nullptr, sum.partials, W, S, n, cb);
  }
  LORDS_CUDA_CHECK_LAUNCH();
  finish_sums(sum, grid, 1, stream);
}

void lords_final(uint8_t* codes, const float* W, const float* S, int64_t n, const GpuCodebook& cb, SumScratch sum,
                 cudaStream_t stream) {
  const int grid = sum_grid(n);
  lords_final_kernel<<<grid, kThreads, 0, stream>>>(codes, sum.partials, W, S, n, cb);
  LORDS_CUDA_CHECK_LAUNCH();
  finish_sums(sum, grid, 2, stream);
}

void normal_inputs(float* X, float* Y, const float* W, const uint8_t* codes, int64_t n, const GpuCodebook& cb,
                   cudaStream_t stream) {
  normal_inputs_kernel<<<elem_grid(n), kThreads, 0, stream>>>(X, Y, W, codes, n, cb);
  LORDS_CUDA_CHECK_LAUNCH();
}

void tri_pairs(uint32_t* pairs, int r, cudaStream_t stream) {
  tri_pairs_kernel<<<1, 1, 0, stream>>>(pairs, r);
  LORDS_CUDA_CHECK_LAUNCH();
}

void outer_products(float* P, const float* F, int64_t M, int r, int64_t s_m, int64_t s_i, const uint32_t* pairs,
                    cudaStream_t stream) {
  const int T = r * (r + 1) / 2;
  outer_products_kernel<<<elem_grid(M * T), kThreads, 0, stream>>>(P, F, M, T, s_m, s_i, pairs);
  LORDS_CUDA_CHECK_LAUNCH();
}

void round_through(float* p, int64_t n, DType dtype, cudaStream_t stream) {
  if (dtype == DType::F32 || n == 0) return;
  round_kernel<<<elem_grid(n), kThreads, 0, stream>>>(p, n, dtype);
  LORDS_CUDA_CHECK_LAUNCH();
}

void adam_update(float* p, const float* g, float g_scale, float* m, float* v, int64_t n, float step,
                 float bc2_sqrt, cudaStream_t stream) {
  if (n == 0) return;
  adam_kernel<<<elem_grid(n), kThreads, 0, stream>>>(p, g, g_scale, m, v, n, step, bc2_sqrt);
  LORDS_CUDA_CHECK_LAUNCH();
}

}  // namespace lords::cuda::qk
