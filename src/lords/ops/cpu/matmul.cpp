// CPU dense linear Y = X W^T (+ bias), W (N, K) used as stored (see ops/matmul.h). One level of
// parallelism, OpenMP, so the runtime's ops and its matmuls share one thread team:
//   M = 1 (decode): memory-bound GEMV, our own AVX2/FMA kernel, 4 rows of W per step sharing the loads
//                   of x, rows split across threads.
//   M > 1 (prefill): (M, N) split into tiles, each thread runs a single-threaded cblas_sgemm on its tile.
// Debian's pthread OpenBLAS does not see the OpenMP team: a threaded sgemm inside (or between) OpenMP
// regions oversubscribes the cores (OpenMP workers spin-wait after a region while BLAS threads want the
// cores; measured 10x slower decode on 2 cores). BLAS runs with 1 thread for the call, then restored.
#include "lords/ops/matmul.h"

#include <cblas.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "lords/core/error.h"

namespace lords::ops::cpu {

namespace {

constexpr int64_t kMinParallelFlops = 1 << 16;  // below this, waking the team costs more than the work
constexpr int64_t kTileMinN = 64;               // narrowest N slice worth an sgemm call
constexpr int64_t kTileMinM = 16;               // shortest M slice worth an sgemm call

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// y[n] = dot(x, W[n,:]) (+ bias[n]) for n in [n0, n1).
void gemv_rows(float* y, const float* x, const float* W, const float* bias, int64_t n0, int64_t n1, int64_t K) {
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) {
    const float* w0 = W + n * K;
    const float* w1 = w0 + K;
    const float* w2 = w1 + K;
    const float* w3 = w2 + K;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
      const __m256 xv = _mm256_loadu_ps(x + k);
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), xv, a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k), xv, a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k), xv, a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k), xv, a3);
    }
    float s[4] = {hsum(a0), hsum(a1), hsum(a2), hsum(a3)};
    for (; k < K; ++k) {
      s[0] += w0[k] * x[k];
      s[1] += w1[k] * x[k];
      s[2] += w2[k] * x[k];
      s[3] += w3[k] * x[k];
    }
    for (int i = 0; i < 4; ++i) y[n + i] = s[i] + (bias ? bias[n + i] : 0.0f);
  }
  for (; n < n1; ++n) {
    const float* w = W + n * K;
    __m256 a = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(w + k), _mm256_loadu_ps(x + k), a);
    float s = hsum(a);
    for (; k < K; ++k) s += w[k] * x[k];
    y[n] = s + (bias ? bias[n] : 0.0f);
  }
}

}  // namespace

void matmul(float* Y, const float* X, const float* W, const float* bias, int64_t M, int64_t N, int64_t K) {
  LORDS_ASSERT(M >= 0 && N >= 0 && K >= 0);
  if (M == 0 || N == 0) return;
  const bool parallel = M * N * K >= kMinParallelFlops;
  if (M == 1) {
#pragma omp parallel if (parallel)
    {
      // Contiguous slices, multiples of 4 rows: each thread streams its own part of W once.
      const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
      const int64_t chunk = ((N + nt - 1) / nt + 3) / 4 * 4;
      const int64_t n0 = std::min(N, t * chunk), n1 = std::min(N, n0 + chunk);
      gemv_rows(Y, X, W, bias, n0, n1, K);
    }
    return;
  }
  if (bias)
    for (int64_t m = 0; m < M; ++m) std::memcpy(Y + m * N, bias, static_cast<size_t>(N) * sizeof(float));
  else
    std::memset(Y, 0, static_cast<size_t>(M * N) * sizeof(float));
  if (K == 0) return;  // BLAS wants lda >= 1
  const int blas_threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
#pragma omp parallel if (parallel)
  {
    // Tiles: N split first (each tile reads a disjoint slice of W), M as well when N is too narrow.
    const int64_t nt = omp_get_num_threads();
    const int64_t tn = std::clamp<int64_t>(N / kTileMinN, 1, nt);
    const int64_t tm = std::clamp<int64_t>((nt + tn - 1) / tn, 1, std::max<int64_t>(1, M / kTileMinM));
#pragma omp for schedule(static)
    for (int64_t tile = 0; tile < tn * tm; ++tile) {
      const int64_t in = tile % tn, im = tile / tn;
      const int64_t n0 = N * in / tn, n1 = N * (in + 1) / tn, m0 = M * im / tm, m1 = M * (im + 1) / tm;
      if (n1 > n0 && m1 > m0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(m1 - m0),
                    static_cast<blasint>(n1 - n0), static_cast<blasint>(K), 1.0f, X + m0 * K,
                    static_cast<blasint>(K), W + n0 * K, static_cast<blasint>(K), 1.0f, Y + m0 * N + n0,
                    static_cast<blasint>(N));
    }
  }
  openblas_set_num_threads(blas_threads);
}

}  // namespace lords::ops::cpu
