// Exact alternating least squares for the LoRDS scale (lords_solver.h): with the codes fixed, every row
// b_n of B solves the r x r normal equations (sum_k d_k L_nk^2 a_k a_k^T) b_n = sum_k d_k L_nk W_nk a_k,
// then every column a_k of A likewise. The N (and K) packed normal matrices come from one GEMM each,
// (d L^2) (N, K) x P (K, r(r+1)/2) with P[k, (i<=j)] = a_ik a_jk, the right-hand sides from
// (d L W) A^T; L and W are streamed in row blocks, so scratch stays O((N + K) r^2) plus two blocks.
// Each system is solved by Cholesky in double.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "lords/core/error.h"
#include "lords/quant/inner_parallel.h"
#include "lords/quant/solver_detail.h"

namespace lords::quant::detail {
namespace {

inline blasint bi(int64_t v) { return static_cast<blasint>(v); }

// Packed upper triangle: entry (i <= j) of an r x r symmetric matrix lives at tri(i, j, r).
inline int64_t tri(int64_t i, int64_t j, int64_t r) { return i * r - i * (i - 1) / 2 + (j - i); }

constexpr int64_t kBlockElems = int64_t{1} << 22;  // X and Y hold at most 4M floats each

}  // namespace

void als_prepare(int64_t N, int64_t K, int64_t r, AlsWork* ws) {
  const int64_t T = r * (r + 1) / 2, M = std::max(N, K);
  ws->rows = std::clamp<int64_t>(kBlockElems / std::max<int64_t>(K, 1), 1, N);
  ws->P.resize(static_cast<size_t>(M * T));
  ws->Gp.resize(static_cast<size_t>(M * T));
  ws->R.resize(static_cast<size_t>(M * r));
  ws->X.resize(static_cast<size_t>(ws->rows * K));
  ws->Y.resize(static_cast<size_t>(ws->rows * K));
}

namespace {

// P[m, tri(i, j)] = F(m, i) F(m, j) where F(m, i) = F[m * s_m + i * s_i] (rows m of the fixed factor).
void outer_products(const float* F, int64_t M, int64_t r, int64_t s_m, int64_t s_i, float* P) {
  const int64_t T = r * (r + 1) / 2;
  parallel_chunks(M, rows_per_chunk(T), [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      float* p = P + m * T;
      for (int64_t i = 0; i < r; ++i) {
        const float fi = F[m * s_m + i * s_i];
        for (int64_t j = i; j < r; ++j) *p++ = fi * F[m * s_m + j * s_i];
      }
    }
  });
}

// X = d L^2, Y = d L W for rows [n0, n0 + rows); d may be null (all ones).
void fill_block(const float* W, const uint8_t* codes, const float* lv, const float* d, int64_t n0, int64_t rows,
                int64_t K, float* X, float* Y) {
  parallel_chunks(rows, rows_per_chunk(K), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t o = (n0 + i) * K;
      for (int64_t k = 0; k < K; ++k) {
        const float L = lv[codes[o + k]];
        const float dl = d != nullptr ? d[k] * L : L;
        X[i * K + k] = dl * L;
        Y[i * K + k] = dl * W[o + k];
      }
    }
  });
}

// Cholesky of a (r, r) symmetric matrix given by get(i, j) (i <= j) into the lower factor a; returns the
// smallest pivot relative to its diagonal entry (1 - R^2 of that column against the earlier ones), or -1
// if the matrix is not numerically positive definite.
template <class Get>
double cholesky(const Get& get, int64_t r, double* a) {
  double min_ratio = 1.0;
  for (int64_t j = 0; j < r; ++j) {
    for (int64_t i = j; i < r; ++i) {
      double v = get(j, i);
      for (int64_t p = 0; p < j; ++p) v -= a[i * r + p] * a[j * r + p];
      if (i == j) {
        if (!(v > 0) || !std::isfinite(v)) return -1.0;
        min_ratio = std::min(min_ratio, v / get(j, j));
        a[j * r + j] = std::sqrt(v);
      } else {
        a[i * r + j] = v / a[j * r + j];
      }
    }
  }
  return min_ratio;
}

// Overwrites y (r) with the solution of a a^T x = y for the lower factor a.
void cholesky_solve(const double* a, int64_t r, double* y) {
  for (int64_t i = 0; i < r; ++i) {
    for (int64_t p = 0; p < i; ++p) y[i] -= a[i * r + p] * y[p];
    y[i] /= a[i * r + i];
  }
  for (int64_t i = r - 1; i >= 0; --i) {
    for (int64_t p = i + 1; p < r; ++p) y[i] -= a[p * r + i] * y[p];
    y[i] /= a[i * r + i];
  }
}

// A Cholesky pivot below this fraction of its diagonal entry (R^2 > 0.999 against the earlier columns)
// marks a (nearly) rank-deficient system, e.g. a column of W with fewer than r codes off the zero level.
// G comes from float GEMMs (~1e-6 relative noise); solving such a system exactly turns that noise into
// large coefficients that cancel in B A, and f, evaluated in float, then goes up (seen at 1e-5).
constexpr double kCollinear = 1e-3;
// Proximal weight of the fallback solve, relative to diag(G).
constexpr double kProxWeight = 1e-3;

// Solves the normal equations G x = rhs (G packed (r, r), Cholesky in double) for one row of the
// factor, x strided by x_stride and holding the old value on entry. A rank-deficient G would send x along
// its null space by float noise alone (harmless to f in exact arithmetic, but it blows up B A and its
// float evaluation). Such systems take the proximal step min f(x) + mu (x - x_old)^T D (x - x_old),
// D = diag(G) (floored at 1e-12 trace), which still cannot increase f and leaves the null space alone.
// A zero or non-finite G keeps x_old. Returns false when x was kept.
bool solve_packed(const float* gp, const float* rhs, int64_t r, double* work, float* x, int64_t x_stride) {
  double* a = work;          // (r, r) lower Cholesky factor
  double* y = work + r * r;  // (r)
  double trace = 0;
  for (int64_t i = 0; i < r; ++i) trace += gp[tri(i, i, r)];
  if (!(trace > 0) || !std::isfinite(trace)) return false;
  const auto plain = [&](int64_t i, int64_t j) { return static_cast<double>(gp[tri(i, j, r)]); };
  if (cholesky(plain, r, a) >= kCollinear) {
    for (int64_t i = 0; i < r; ++i) y[i] = rhs[i];
  } else {
    const double floor = 1e-12 * trace;
    const auto prox_diag = [&](int64_t i) { return kProxWeight * std::max(plain(i, i), floor); };
    const auto damped = [&](int64_t i, int64_t j) { return plain(i, j) + (i == j ? prox_diag(i) : 0.0); };
    if (cholesky(damped, r, a) < 0) return false;
    for (int64_t i = 0; i < r; ++i) y[i] = rhs[i] + prox_diag(i) * x[i * x_stride];
  }
  cholesky_solve(a, r, y);
  for (int64_t i = 0; i < r; ++i) {
    if (!std::isfinite(y[i])) return false;
  }
  for (int64_t i = 0; i < r; ++i) x[i * x_stride] = static_cast<float>(y[i]);
  return true;
}

// Solves all M packed systems; row m's solution goes to out[m * s_m + i * s_i].
void solve_all(const float* Gp, const float* R, int64_t M, int64_t r, float* out, int64_t s_m, int64_t s_i) {
  const int64_t T = r * (r + 1) / 2;
  // ~r^3 / 3 flops per system: chunks of at least 64k / r^2 systems.
  parallel_chunks(M, rows_per_chunk(r * r), [&](int64_t m0, int64_t m1) {
    std::vector<double> work(static_cast<size_t>(r * r + r));
    for (int64_t m = m0; m < m1; ++m) solve_packed(Gp + m * T, R + m * r, r, work.data(), out + m * s_m, s_i);
  });
}

}  // namespace

void als_sweep_ws(const float* W, const uint8_t* codes, const Codebook& cb, const float* d, LowRankScale* sc,
                  AlsWork* ws) {
  const int64_t N = sc->N, K = sc->K, r = sc->r, T = r * (r + 1) / 2;
  if (r == 0) return;
  const float* lv = cb.levels.data();
  float* B = sc->B.data();  // (N, r)
  float* A = sc->A.data();  // (r, K)
  // B-step: Gp_n = sum_k d_k L_nk^2 a_k a_k^T = (d L^2)(N, K) x P_A (K, T); R = (d L W) A^T.
  outer_products(A, K, r, 1, K, ws->P.data());
  for (int64_t n0 = 0; n0 < N; n0 += ws->rows) {
    const int64_t rows = std::min(ws->rows, N - n0);
    fill_block(W, codes, lv, d, n0, rows, K, ws->X.data(), ws->Y.data());
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, bi(rows), bi(T), bi(K), 1.0f, ws->X.data(), bi(K),
                ws->P.data(), bi(T), 0.0f, ws->Gp.data() + n0 * T, bi(T));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, bi(rows), bi(r), bi(K), 1.0f, ws->Y.data(), bi(K), A,
                bi(K), 0.0f, ws->R.data() + n0 * r, bi(r));
  }
  solve_all(ws->Gp.data(), ws->R.data(), N, r, B, r, 1);
  // A-step: column k solves (sum_n d_k L_nk^2 b_n b_n^T) a_k = sum_n d_k L_nk W_nk b_n. d_k is a common
  // factor of both sides, so it is left out (same solution, better scaled; a d_k = 0 column stays fitted).
  outer_products(B, N, r, r, 1, ws->P.data());
  for (int64_t n0 = 0; n0 < N; n0 += ws->rows) {
    const int64_t rows = std::min(ws->rows, N - n0);
    const float beta = n0 == 0 ? 0.0f : 1.0f;
    fill_block(W, codes, lv, nullptr, n0, rows, K, ws->X.data(), ws->Y.data());
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, bi(K), bi(T), bi(rows), 1.0f, ws->X.data(), bi(K),
                ws->P.data() + n0 * T, bi(T), beta, ws->Gp.data(), bi(T));
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, bi(K), bi(r), bi(rows), 1.0f, ws->Y.data(), bi(K),
                B + n0 * r, bi(r), beta, ws->R.data(), bi(r));
  }
  solve_all(ws->Gp.data(), ws->R.data(), K, r, A, 1, K);
}

}  // namespace lords::quant::detail
