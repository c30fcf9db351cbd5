// Internal to lords::cuda quantization: host launchers of the quantization kernels. Every pointer is
// device memory, every launch goes on `stream` and is checked, nothing synchronizes. Element math
// mirrors the CPU code line by line (quant/blockwise.cpp, lords_solver.cpp, lords_als.cpp); where a
// kernel differs it is only in summation order. Sums are deterministic: a fixed grid of at most
// kSumBlocks blocks writes one partial per block and one block adds them in a fixed order.
// Plain C++ declarations, so host .cpp files and tests can call them.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "lords/core/dtype.h"
#include "lords/cuda/quant/gpu_codebook.h"

namespace lords::cuda::qk {

inline constexpr int kSumBlocks = 1024;  // most blocks of a summing kernel (and partials per sum)

// Scratch of the summing launchers: partials (2 * kSumBlocks) and the result out (2); out[0] and
// out[1] are the two sums a launcher documents.
struct SumScratch {
  double* partials;
  double* out;
};

// s (N, nb) = max |W[n, jG : jG + G)| over each block (nb = ceil(K / G), the last block may be short),
// rounded through `round` (F32: unchanged; F16/BF16: the storage rounding of quantize_blockwise).
void block_absmax(float* s, const float* W, int64_t N, int64_t K, int64_t G, DType round, cudaStream_t stream);

// RTN: codes (N, K) = nearest level of W / s[n, k / G]; out[0] = ||W - W_hat||^2 with W_hat = level * s
// in float (as dequantize_blockwise), out[1] = ||W||^2.
void rtn_codes(uint8_t* codes, const float* W, const float* s, int64_t N, int64_t K, int64_t G,
               const GpuCodebook& cb, SumScratch sum, cudaStream_t stream);

// Q-step plus objective for one iterate, n = N K elements: codes = nearest level of W / S and out[0] =
// f = sum (level * S - W)^2 (the product exact in double, as lords_solver.cpp). With g non-null, also
// g = E * level in float (the gradient of f/2 with respect to S, for Adam).
void lords_eval(uint8_t* codes, float* g, const float* W, const float* S, int64_t n, const GpuCodebook& cb,
                SumScratch sum, cudaStream_t stream);

// The final Q-step against the stored scale: codes as lords_eval, out[0] = ||W - W_hat||^2 with W_hat =
// level * S in float (as dequantize_lords), out[1] = ||W||^2.
void lords_final(uint8_t* codes, const float* W, const float* S, int64_t n, const GpuCodebook& cb, SumScratch sum,
                 cudaStream_t stream);

// ALS inputs for fixed codes: X = level^2, Y = level * W (n elements each).
void normal_inputs(float* X, float* Y, const float* W, const uint8_t* codes, int64_t n, const GpuCodebook& cb,
                   cudaStream_t stream);

// Packed-upper-triangle index pairs of an r x r symmetric matrix: pairs[t] = i | j << 16 for the t-th
// (i <= j) in row-major order (t = tri(i, j) of lords_als.cpp). T = r (r + 1) / 2 entries.
void tri_pairs(uint32_t* pairs, int r, cudaStream_t stream);

// P (M, T): P[m, t] = F(m, i) F(m, j) for pairs[t] = (i, j), F(m, i) = F[m * s_m + i * s_i].
void outer_products(float* P, const float* F, int64_t M, int r, int64_t s_m, int64_t s_i, const uint32_t* pairs,
                    cudaStream_t stream);

// Solves the M packed normal systems G_m x = R_m (Gp (M, T), R (M, r)) by Cholesky in double with the CPU's
// rank-deficiency rule (a pivot below 1e-3 of its diagonal entry: proximal step with weight 1e-3 diag G
// around the old x; a zero or non-finite system keeps the old x). x_m[i] = out[m * s_m + i * s_i] holds
// the old value on entry. One warp per system, (r^2 + 3r) doubles of shared memory each.
void solve_normal(float* out, const float* Gp, const float* R, int64_t M, int r, int64_t s_m, int64_t s_i,
                  const uint32_t* pairs, cudaStream_t stream);
// Shared memory one system of rank r needs.
inline size_t solve_normal_smem(int r) {
  return static_cast<size_t>(r) * static_cast<size_t>(r + 3) * sizeof(double);
}

// p[i] = p[i] rounded through `dtype` (F32 leaves p unchanged and launches nothing).
void round_through(float* p, int64_t n, DType dtype, cudaStream_t stream);

// One Adam update with torch's defaults (beta 0.9 / 0.999, eps 1e-8) on n parameters, gradient g * g_scale;
// step = lr / (1 - beta1^t) and bc2_sqrt = sqrt(1 - beta2^t) are computed by the caller (in float, as the CPU).
void adam_update(float* p, const float* g, float g_scale, float* m, float* v, int64_t n, float step,
                 float bc2_sqrt, cudaStream_t stream);

}  // namespace lords::cuda::qk
