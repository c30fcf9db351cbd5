// CPU dense linear backward (see train/grad_linear.h): dX = dY W and dW += dY^T X as cblas_sgemm calls
// on tiles of their outputs, one single-threaded sgemm per OpenMP thread. Same threading rule as
// ops/cpu/matmul.cpp: Debian's pthread OpenBLAS does not see the OpenMP team, and a threaded sgemm
// next to OpenMP regions oversubscribes the cores, so BLAS runs with 1 thread for the call.
#include "lords/train/grad_linear.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "lords/core/error.h"

namespace lords::train::cpu {

namespace {

constexpr int64_t kMinParallelFlops = 1 << 16;  // below this, waking the team costs more than the work
constexpr int64_t kTileMinN = 64;               // narrowest column slice worth an sgemm call
constexpr int64_t kTileMinM = 16;               // shortest row slice worth an sgemm call
constexpr int64_t kColBlock = 256;              // dbias columns per task

// C (m, n) = op(A) (m, k) op(B) (k, n) + beta C, all row-major; lda/ldb are the stored row lengths.
struct Gemm {
  CBLAS_TRANSPOSE ta, tb;
  int64_t m, n, k;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float beta;
  float* C;
  int64_t ldc;
};

// Splits C into a tn x tm grid of tiles (columns first: a column slice reads a disjoint slice of B),
// one sgemm per tile. A row range of C is a row range of op(A): rows of A, or columns of A when
// transposed; likewise a column range of C is a column range of op(B).
void sgemm_tiled(const Gemm& g) {
  if (g.m == 0 || g.n == 0) return;
  if (g.k == 0) {  // empty sum; BLAS wants lda >= 1, so do the beta part here
    for (int64_t i = 0; i < g.m; ++i)
      for (int64_t j = 0; j < g.n; ++j) g.C[i * g.ldc + j] = g.beta == 0.0f ? 0.0f : g.beta * g.C[i * g.ldc + j];
    return;
  }
  const int blas_threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
#pragma omp parallel if (g.m * g.n * g.k >= kMinParallelFlops)
  {
    const int64_t nt = omp_get_num_threads();
    const int64_t tn = std::clamp<int64_t>(g.n / kTileMinN, 1, nt);
    const int64_t tm = std::clamp<int64_t>((nt + tn - 1) / tn, 1, std::max<int64_t>(1, g.m / kTileMinM));
#pragma omp for schedule(static)
    for (int64_t tile = 0; tile < tn * tm; ++tile) {
      const int64_t in = tile % tn, im = tile / tn;
      const int64_t n0 = g.n * in / tn, n1 = g.n * (in + 1) / tn, m0 = g.m * im / tm, m1 = g.m * (im + 1) / tm;
      if (n1 <= n0 || m1 <= m0) continue;
      const float* a = g.ta == CblasNoTrans ? g.A + m0 * g.lda : g.A + m0;
      const float* b = g.tb == CblasNoTrans ? g.B + n0 : g.B + n0 * g.ldb;
      cblas_sgemm(CblasRowMajor, g.ta, g.tb, static_cast<blasint>(m1 - m0), static_cast<blasint>(n1 - n0),
                  static_cast<blasint>(g.k), 1.0f, a, static_cast<blasint>(g.lda), b, static_cast<blasint>(g.ldb),
                  g.beta, g.C + m0 * g.ldc + n0, static_cast<blasint>(g.ldc));
    }
  }
  openblas_set_num_threads(blas_threads);
}

}  // namespace

void linear_bwd(
    float* dX, float* dW, float* dbias, const float* dY, const float* X, const float* W, const LinearShape& s) {
  LORDS_ASSERT(s.M >= 0 && s.N >= 0 && s.K >= 0);
  const int64_t M = s.M, N = s.N, K = s.K;
  // dX (M, K) = dY (M, N) W (N, K), overwritten (beta 0).
  if (dX)
    sgemm_tiled({.ta = CblasNoTrans, .tb = CblasNoTrans, .m = M, .n = K, .k = N, .A = dY, .lda = N, .B = W,
                 .ldb = K, .beta = 0.0f, .C = dX, .ldc = K});
  // dW (N, K) += dY^T (N, M) X (M, K): dY is stored (M, N), so op(A) = transpose; accumulated (beta 1).
  if (dW)
    sgemm_tiled({.ta = CblasTrans, .tb = CblasNoTrans, .m = N, .n = K, .k = M, .A = dY, .lda = N, .B = X,
                 .ldb = K, .beta = 1.0f, .C = dW, .ldc = K});
  // dbias += column sums of dY, fp64 per column block (threads own disjoint columns).
  if (dbias) {
    const int64_t n_blocks = (N + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static) if (M * N >= (int64_t{1} << 15))
    for (int64_t blk = 0; blk < n_blocks; ++blk) {
      const int64_t n0 = blk * kColBlock, nn = std::min(kColBlock, N - n0);
      double acc[kColBlock] = {};
      for (int64_t m = 0; m < M; ++m) {
        const float* row = dY + m * N + n0;
#pragma omp simd
        for (int64_t n = 0; n < nn; ++n) acc[n] += row[n];
      }
      for (int64_t n = 0; n < nn; ++n) dbias[n0 + n] += static_cast<float>(acc[n]);
    }
  }
}

}  // namespace lords::train::cpu
