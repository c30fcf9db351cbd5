#include "lords/quant/gptq.h"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "lords/core/error.h"

namespace lords::quant {
namespace {

// Upper Cholesky factor U of H^-1 (H^-1 = U^T U), after dampening and dead-column fixes, in the given
// column order. Rows of U are what the error of a quantized column is spread with.
std::vector<double> inverse_cholesky_upper(std::vector<double> H, int64_t K, double damp) {
  double mean_diag = 0;
  for (int64_t i = 0; i < K; ++i) mean_diag += H[static_cast<size_t>(i * K + i)];
  mean_diag /= static_cast<double>(K);
  const double add = damp * (mean_diag > 0 ? mean_diag : 1.0);
  for (int64_t i = 0; i < K; ++i) H[static_cast<size_t>(i * K + i)] += add;
  const lapack_int k = static_cast<lapack_int>(K);
  // H = L L^T, H^-1 from it, then the upper factor of H^-1.
  LORDS_CHECK(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', k, H.data(), k) == 0, ErrorKind::Internal,
              "[gptq] Hessian is not positive definite after dampening {}", damp);
  LORDS_CHECK(LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', k, H.data(), k) == 0, ErrorKind::Internal,
              "[gptq] Hessian inversion failed");
  for (int64_t i = 0; i < K; ++i)  // dpotri fills the lower triangle: mirror it
    for (int64_t j = i + 1; j < K; ++j) H[static_cast<size_t>(i * K + j)] = H[static_cast<size_t>(j * K + i)];
  LORDS_CHECK(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', k, H.data(), k) == 0, ErrorKind::Internal,
              "[gptq] inverse Hessian is not positive definite");
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j < i; ++j) H[static_cast<size_t>(i * K + j)] = 0;
  return H;
}

struct Prepared {
  std::vector<int64_t> perm;  // column order: perm[i] = original column quantized i-th
  std::vector<double> U;      // upper Cholesky factor of the permuted H^-1
};

Prepared prepare(const std::vector<double>& H, int64_t K, const GptqOptions& opt, std::vector<bool>* dead) {
  LORDS_CHECK(static_cast<int64_t>(H.size()) == K * K, ErrorKind::BadShape, "[gptq] H has {} entries, expected {}",
              H.size(), K * K);
  Prepared p;
  p.perm.resize(static_cast<size_t>(K));
  std::iota(p.perm.begin(), p.perm.end(), 0);
  if (opt.act_order)
    std::stable_sort(p.perm.begin(), p.perm.end(), [&](int64_t a, int64_t b) {
      return H[static_cast<size_t>(a * K + a)] > H[static_cast<size_t>(b * K + b)];
    });
  std::vector<double> Hp(static_cast<size_t>(K * K));
  dead->assign(static_cast<size_t>(K), false);
  for (int64_t i = 0; i < K; ++i) {
    const int64_t oi = p.perm[static_cast<size_t>(i)];
    // A column no calibration input ever touched: its weights do not matter; fix H so it stays invertible.
    (*dead)[static_cast<size_t>(i)] = H[static_cast<size_t>(oi * K + oi)] <= 0;
    for (int64_t j = 0; j < K; ++j) Hp[static_cast<size_t>(i * K + j)] = H[static_cast<size_t>(oi * K + p.perm[static_cast<size_t>(j)])];
    if ((*dead)[static_cast<size_t>(i)]) Hp[static_cast<size_t>(i * K + i)] = 1;
  }
  p.U = inverse_cholesky_upper(std::move(Hp), K, opt.damp);
  return p;
}

// The error-feedback loop on one block of rows, in permuted column order. quantize(row, col_perm_index,
// value) returns the code; level_value(row, i, code) the reconstructed weight.
template <typename Quantize, typename Value>
void feedback_rows(std::vector<double>& Wp, int64_t rows, int64_t K, const std::vector<double>& U, int64_t batch,
                   const Quantize& quantize, const Value& value) {
  std::vector<double> err(static_cast<size_t>(rows * batch));
  for (int64_t i1 = 0; i1 < K; i1 += batch) {
    const int64_t i2 = std::min(K, i1 + batch), cnt = i2 - i1;
    for (int64_t i = i1; i < i2; ++i) {
      const double d = U[static_cast<size_t>(i * K + i)];
      for (int64_t n = 0; n < rows; ++n) {
        double* w = &Wp[static_cast<size_t>(n * K)];
        const double q = value(n, i, quantize(n, i, w[i]));
        const double e = (w[i] - q) / d;
        err[static_cast<size_t>(n * batch + (i - i1))] = e;
        w[i] = q;
        for (int64_t j = i + 1; j < i2; ++j) w[j] -= e * U[static_cast<size_t>(i * K + j)];
      }
    }
    if (i2 < K)  // lazy update of the remaining columns: W[:, i2:] -= Err · U[i1:i2, i2:]
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(rows), static_cast<blasint>(K - i2),
                  static_cast<blasint>(cnt), -1.0, err.data(), static_cast<blasint>(batch), &U[static_cast<size_t>(i1 * K + i2)],
                  static_cast<blasint>(K), 1.0, &Wp[static_cast<size_t>(i2)], static_cast<blasint>(K));
  }
}

constexpr int64_t kRowBlock = 64;  // rows processed together (one GEMM per lazy batch)

// GPTQ over all rows with a per-element scale scale_of(n, k) (original column order); writes codes (N, K).
// A scale below 1e-30 in magnitude takes the code of the level nearest 0 (the weight is 0 whatever the code).
template <typename ScaleOf>
void gptq_run(const float* W, int64_t N, int64_t K, const Codebook& cb, const std::vector<double>& H,
              const GptqOptions& opt, const ScaleOf& scale_of, uint8_t* codes) {
  std::vector<bool> dead;
  const Prepared p = prepare(H, K, opt, &dead);
  const uint8_t zero_code = cb.nearest(0.0f);
#pragma omp parallel for schedule(dynamic)
  for (int64_t n0 = 0; n0 < N; n0 += kRowBlock) {
    const int64_t rows = std::min(kRowBlock, N - n0);
    std::vector<double> Wp(static_cast<size_t>(rows * K));  // rows in quantization (permuted) order
    for (int64_t n = 0; n < rows; ++n)
      for (int64_t i = 0; i < K; ++i)
        Wp[static_cast<size_t>(n * K + i)] =
            dead[static_cast<size_t>(i)] ? 0.0 : W[static_cast<size_t>((n0 + n) * K + p.perm[static_cast<size_t>(i)])];
    auto scale = [&](int64_t n, int64_t i) { return scale_of(n0 + n, p.perm[static_cast<size_t>(i)]); };
    feedback_rows(
        Wp, rows, K, p.U, opt.batch,
        [&](int64_t n, int64_t i, double w) {
          const float sc = scale(n, i);
          const uint8_t c = std::fabs(sc) > 1e-30f ? cb.nearest(static_cast<float>(w / sc)) : zero_code;
          codes[static_cast<size_t>((n0 + n) * K + p.perm[static_cast<size_t>(i)])] = c;
          return c;
        },
        [&](int64_t n, int64_t i, uint8_t c) { return static_cast<double>(cb.levels[c]) * scale(n, i); });
  }
}

}  // namespace

BlockwiseQuant gptq_blockwise(const float* W, int64_t N, int64_t K, int64_t G, const Codebook& cb,
                              const std::vector<double>& H, const GptqOptions& opt, float (*scale_round)(float)) {
  BlockwiseQuant out;
  out.N = N;
  out.K = K;
  out.G = G;
  const int64_t nb = num_blocks(K, G);
  out.codes.assign(static_cast<size_t>(N * K), 0);
  // Static group scales from the original weights (absmax), so groups stay contiguous in K under act-order.
  out.scales = block_absmax(W, N, K, G);
  for (float& sc : out.scales) sc = scale_round(sc);
  gptq_run(W, N, K, cb, H, opt,
           [&](int64_t n, int64_t k) { return out.scales[static_cast<size_t>(n * nb + k / G)]; }, out.codes.data());
  return out;
}

void gptq_codes(const float* W, const float* S, int64_t N, int64_t K, const Codebook& cb,
                const std::vector<double>& H, const GptqOptions& opt, uint8_t* codes) {
  gptq_run(W, N, K, cb, H, opt, [&](int64_t n, int64_t k) { return S[static_cast<size_t>(n * K + k)]; }, codes);
}

double hessian_objective(const float* W, const float* W_hat, int64_t N, int64_t K, const std::vector<double>& H) {
  std::vector<double> E(static_cast<size_t>(N * K)), EH(static_cast<size_t>(N * K));
  for (int64_t i = 0; i < N * K; ++i) E[static_cast<size_t>(i)] = static_cast<double>(W[i]) - W_hat[i];
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(N), static_cast<blasint>(K),
              static_cast<blasint>(K), 1.0, E.data(), static_cast<blasint>(K), H.data(), static_cast<blasint>(K), 0.0,
              EH.data(), static_cast<blasint>(K));
  double f = 0;
  for (size_t i = 0; i < E.size(); ++i) f += E[i] * EH[i];
  return f;
}

SolverResult refine_lords_gptq(const float* W, const Codebook& cb, const LowRankScale& init,
                               const std::vector<double>& H, const GptqOptions& gopt, int steps) {
  const int64_t N = init.N, K = init.K;
  std::vector<float> d(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) d[static_cast<size_t>(k)] = static_cast<float>(std::max(H[static_cast<size_t>(k * K + k)], 0.0));
  std::vector<float> S(static_cast<size_t>(N * K)), W_hat(static_cast<size_t>(N * K));
  SolverResult res;
  res.scale = init;
  res.codes.resize(static_cast<size_t>(N * K));
  LowRankScale cur = init;
  std::vector<uint8_t> codes(static_cast<size_t>(N * K));
  auto evaluate = [&](const std::vector<uint8_t>& c) {
    dequantize_lords(cur, c.data(), cb, W_hat.data());
    return hessian_objective(W, W_hat.data(), N, K, H);
  };
  lowrank_product(cur, S.data());
  q_step(W, S.data(), N, K, cb, codes.data());
  res.init_objective = res.best_objective = evaluate(codes);
  res.history.push_back(res.init_objective);
  res.codes = codes;
  for (int step = 1; step <= steps; ++step) {
    lowrank_product(cur, S.data());
    gptq_codes(W, S.data(), N, K, cb, H, gopt, codes.data());
    const double f_codes = evaluate(codes);
    if (f_codes < res.best_objective) {
      res.best_objective = f_codes, res.best_step = step, res.scale = cur, res.codes = codes;
    }
    als_sweep(W, codes.data(), cb, d.data(), &cur);
    const double f = evaluate(codes);
    res.history.push_back(std::min(f, f_codes));
    if (f < res.best_objective) res.best_objective = f, res.best_step = step, res.scale = cur, res.codes = codes;
  }
  return res;
}

}  // namespace lords::quant
