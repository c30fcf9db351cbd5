// The batched r x r normal-equation solves of ALS on the GPU, with exactly the CPU's rules
// (quant/lords_als.cpp solve_packed): Cholesky in double; a pivot below kCollinear of its diagonal entry
// (a nearly rank-deficient system, e.g. a column with fewer than r codes off the zero level) switches to
// the proximal step  min f(x) + mu (x - x_old)^T D (x - x_old), D = diag(G) floored at 1e-12 trace(G),
// mu = kProxWeight; a zero / non-finite trace, a failed damped factorization or a non-finite solution
// keeps x_old. cuSOLVER's potrfBatched has no such fallback, hence this kernel.
//
// One warp per system (r <= ~160: the factor lives in shared memory). Shared layout, doubles:
//   a  (r, r)  lower triangle incl. diagonal: the Cholesky factor; strict upper triangle: G itself
//   gd (r)     diag(G)        px (r)  proximal weights        y (r)  right-hand side, then solution
// The factor never overwrites G (strict upper vs lower), so the damped retry reads G again for free.
#include "lords/cuda/cuda_check.h"
#include "lords/cuda/quant/quant_kernels.h"

namespace lords::cuda::qk {
namespace {

constexpr double kCollinear = 1e-3;   // lords_als.cpp: min pivot ratio of a well-posed system
constexpr double kProxWeight = 1e-3;  // lords_als.cpp: proximal weight relative to diag(G)

// Left-looking Cholesky of G (+ diag(px) when px is non-null) into a's lower triangle. Column j: each lane
// takes rows i = j + lane, j + lane + 32, ... and subtracts the dot product over earlier columns in
// the CPU's order. Returns the smallest pivot over its diagonal entry, or -1 if G is not numerically
// positive definite; the value (and so every branch on it) is the same in all lanes.
__device__ double warp_cholesky(double* a, const double* gd, const double* px, int r, int lane) {
  double min_ratio = 1.0;
  for (int j = 0; j < r; ++j) {
    for (int i = j + lane; i < r; i += 32) {
      double v = i == j ? gd[j] + (px != nullptr ? px[j] : 0.0) : a[j * r + i];
      for (int p = 0; p < j; ++p) v -= a[i * r + p] * a[j * r + p];
      a[i * r + j] = v;
    }
    __syncwarp();
    const double vjj = a[j * r + j];
    if (!(vjj > 0.0) || !isfinite(vjj)) return -1.0;
    min_ratio = fmin(min_ratio, vjj / (gd[j] + (px != nullptr ? px[j] : 0.0)));
    const double d = sqrt(vjj);
    __syncwarp();  // every lane has read a[j][j] before lane 0 replaces it
    for (int i = j + lane; i < r; i += 32) a[i * r + j] = i == j ? d : a[i * r + j] / d;
    __syncwarp();
  }
  return min_ratio;
}

// y <- (a a^T)^-1 y. Column-oriented substitution: y[i] gets the same updates in the same order as the
// CPU's row-oriented loop in the forward pass; the backward pass sums in the reverse order (double).
__device__ void warp_solve(const double* a, double* y, int r, int lane) {
  for (int i = 0; i < r; ++i) {
    const double zi = y[i] / a[i * r + i];
    __syncwarp();
    if (lane == 0) y[i] = zi;
    for (int p = i + 1 + lane; p < r; p += 32) y[p] -= a[p * r + i] * zi;
    __syncwarp();
  }
  for (int i = r - 1; i >= 0; --i) {
    const double xi = y[i] / a[i * r + i];
    __syncwarp();
    if (lane == 0) y[i] = xi;
    for (int p = lane; p < i; p += 32) y[p] -= a[i * r + p] * xi;
    __syncwarp();
  }
}

__global__ void solve_normal_kernel(float* __restrict__ out, const float* __restrict__ Gp,
                                    const float* __restrict__ R, int64_t M, int r, int64_t s_m, int64_t s_i,
                                    const uint32_t* __restrict__ pairs) {
  extern __shared__ double smem[];
  double* a = smem;
  double* gd = a + r * r;
  double* px = gd + r;
  double* y = px + r;
  const int lane = static_cast<int>(threadIdx.x);
  const int T = r * (r + 1) / 2;
  for (int64_t m = blockIdx.x; m < M; m += gridDim.x) {
    const float* gp = Gp + m * T;
    const float* rhs = R + m * r;
    float* x = out + m * s_m;
    for (int t = lane; t < T; t += 32) {
      const uint32_t p = pairs[t];
      const int i = static_cast<int>(p & 0xffffu), j = static_cast<int>(p >> 16);
      const double g = gp[t];
      if (i == j) gd[i] = g;
      else a[i * r + j] = g;  // i < j: strict upper triangle
    }
    __syncwarp();
    double trace = 0.0;  // every lane adds the same values in the same order
    for (int i = 0; i < r; ++i) trace += gd[i];
    bool solved = false;
    if (trace > 0.0 && isfinite(trace)) {
      if (warp_cholesky(a, gd, nullptr, r, lane) >= kCollinear) {
        for (int i = lane; i < r; i += 32) y[i] = rhs[i];
        solved = true;
      } else {
        const double floor = 1e-12 * trace;
        for (int i = lane; i < r; i += 32) px[i] = kProxWeight * fmax(gd[i], floor);
        __syncwarp();
        if (warp_cholesky(a, gd, px, r, lane) >= 0.0) {
          for (int i = lane; i < r; i += 32) y[i] = static_cast<double>(rhs[i]) + px[i] * x[i * s_i];
          solved = true;
        }
      }
    }
    if (solved) {
      __syncwarp();
      warp_solve(a, y, r, lane);
      bool finite = true;
      for (int i = lane; i < r; i += 32) finite = finite && isfinite(y[i]);
      if (__all_sync(0xffffffffu, finite)) {
        for (int i = lane; i < r; i += 32) x[i * s_i] = static_cast<float>(y[i]);
      }
    }
    __syncwarp();  // the next system overwrites the shared arrays
  }
}

}  // namespace

void solve_normal(float* out, const float* Gp, const float* R, int64_t M, int r, int64_t s_m, int64_t s_i,
                  const uint32_t* pairs, cudaStream_t stream) {
  if (M == 0 || r == 0) return;
  const size_t smem = solve_normal_smem(r);
  // Past the 48 KB default a kernel must opt in to more dynamic shared memory (the caller checked the
  // device limit).
  if (smem > 48 * 1024) {
    LORDS_CUDA_CHECK(cudaFuncSetAttribute(solve_normal_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(smem)));
  }
  const int grid = static_cast<int>(M < (int64_t{1} << 20) ? M : (int64_t{1} << 20));
  solve_normal_kernel<<<grid, 32, smem, stream>>>(out, Gp, R, M, r, s_m, s_i, pairs);
  LORDS_CUDA_CHECK_LAUNCH();
}

}  // namespace lords::cuda::qk
