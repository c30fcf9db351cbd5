// LoRDS initialization by an exact SVD of the block-scale matrix S = s E (s: (N, nb) absmax, E: (nb, K)
// block expansion). With D = E E^T = diag(block lengths), S = (s D^1/2)(D^-1/2 E) and D^-1/2 E has
// orthonormal rows, so S = U Sigma (V^T D^-1/2 E) where U Sigma V^T is the SVD of the small (N, nb)
// matrix s D^1/2. B = U_r Sigma_r^1/2, A = Sigma_r^1/2 V_r^T D^-1/2 E (paper §1.2, without the
// randomized SVD of the author code).
#include "lords/quant/lords_init.h"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cmath>

#include "lords/core/error.h"
#include "lords/quant/blockwise.h"

namespace lords::quant {

int64_t parity_rank(int64_t N, int64_t K, int64_t G) {
  LORDS_CHECK(N > 0 && K > 0 && G > 0, ErrorKind::Usage, "[parity_rank] bad shape ({}, {}) or block {}", N, K, G);
  const int64_t r = (N * K) / (G * (N + K));
  return std::clamp<int64_t>(r, 1, std::min(N, K));
}

SvdInit svd_init_from_blocks(const float* W, int64_t N, int64_t K, int64_t G, int64_t r) {
  LORDS_CHECK(N > 0 && K > 0 && G > 0 && r >= 0, ErrorKind::Usage,
              "[svd_init] bad shape ({}, {}), block {} or rank {}", N, K, G, r);
  const std::vector<float> s = block_absmax(W, N, K, G);
  return svd_init_from_absmax(s.data(), N, K, G, r);
}

SvdInit svd_init_from_absmax(const float* s, int64_t N, int64_t K, int64_t G, int64_t r) {
  LORDS_CHECK(N > 0 && K > 0 && G > 0 && r >= 0, ErrorKind::Usage,
              "[svd_init] bad shape ({}, {}), block {} or rank {}", N, K, G, r);
  const int64_t nb = num_blocks(K, G);
  const int64_t m = std::min(N, nb);  // number of singular values of s D^1/2 (and nonzero ones of S)
  std::vector<double> sqrt_len(static_cast<size_t>(nb));
  for (int64_t j = 0; j < nb; ++j) sqrt_len[static_cast<size_t>(j)] = std::sqrt(static_cast<double>(std::min(G, K - j * G)));

  // M = s D^1/2, row-major (N, nb), in double: the decomposition is tiny next to the rest of the pipeline.
  std::vector<double> M(static_cast<size_t>(N * nb));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < nb; ++j)
      M[static_cast<size_t>(n * nb + j)] = s[n * nb + j] * sqrt_len[static_cast<size_t>(j)];
  std::vector<double> sv(static_cast<size_t>(m)), U(static_cast<size_t>(N * m)), VT(static_cast<size_t>(m * nb));
  const lapack_int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', static_cast<lapack_int>(N), static_cast<lapack_int>(nb),
                                         M.data(), static_cast<lapack_int>(nb), sv.data(), U.data(),
                                         static_cast<lapack_int>(m), VT.data(), static_cast<lapack_int>(nb));
  LORDS_CHECK(info == 0, ErrorKind::Internal, "[svd_init] dgesdd failed on ({}, {}): info {}", N, nb, info);

  SvdInit out;
  out.singular_values = sv;
  LowRankScale& ls = out.scale;
  ls.N = N;
  ls.K = K;
  ls.r = r;
  ls.B.assign(static_cast<size_t>(N * r), 0.0f);
  ls.A.assign(static_cast<size_t>(r * K), 0.0f);
  const int64_t kept = std::min(r, m);
  for (int64_t i = 0; i < kept; ++i) {
    // Fix the sign so the column of B sums to >= 0: for all-positive s the leading component is then
    // positive, and results do not depend on LAPACK's sign choice.
    double col_sum = 0;
    for (int64_t n = 0; n < N; ++n) col_sum += U[static_cast<size_t>(n * m + i)];
    const double sign = col_sum < 0 ? -1.0 : 1.0;
    const double root = std::sqrt(sv[static_cast<size_t>(i)]);
    for (int64_t n = 0; n < N; ++n)
      ls.B[static_cast<size_t>(n * r + i)] = static_cast<float>(sign * root * U[static_cast<size_t>(n * m + i)]);
    for (int64_t k = 0; k < K; ++k) {
      const int64_t j = k / G;
      ls.A[static_cast<size_t>(i * K + k)] = static_cast<float>(
          sign * root * VT[static_cast<size_t>(i * nb + j)] / sqrt_len[static_cast<size_t>(j)]);
    }
  }
  // ||S - B A||_F^2 = sum of the discarded sigma^2 (S has the same singular values as s D^1/2).
  double total = 0, dropped = 0;
  for (int64_t i = 0; i < m; ++i) {
    const double v = sv[static_cast<size_t>(i)] * sv[static_cast<size_t>(i)];
    total += v;
    if (i >= kept) dropped += v;
  }
  out.rel_err = total > 0 ? std::sqrt(dropped / total) : 0.0;
  return out;
}

void lowrank_product(const LowRankScale& s, float* S) {
  LORDS_ASSERT(s.B.size() == static_cast<size_t>(s.N * s.r) && s.A.size() == static_cast<size_t>(s.r * s.K));
  if (s.r == 0) {
    std::fill(S, S + s.N * s.K, 0.0f);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(s.N), static_cast<blasint>(s.K),
              static_cast<blasint>(s.r), 1.0f, s.B.data(), static_cast<blasint>(s.r), s.A.data(),
              static_cast<blasint>(s.K), 0.0f, S, static_cast<blasint>(s.K));
}

}  // namespace lords::quant
