// LoRDS refinement (paper §1.4): alternate the closed-form Q-step (nearest level of W / S) with a scale
// step on S = B A, either exact alternating least squares (lords_als.cpp) or the paper's single Adam step
// on ||L (.) S - W||_F. Objective
//   f = sum_nk d_k (W_nk - level[Q_nk] S_nk)^2,   accumulated in double.
// The best iterate by f is returned, so the result is never worse than the initialization.
#include "lords/quant/lords_solver.h"

#include <cblas.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "lords/core/error.h"
#include "lords/quant/inner_parallel.h"
#include "lords/quant/nearest_kernel.h"
#include "lords/quant/solver_detail.h"

namespace lords::quant {
namespace {

inline blasint bi(int64_t v) { return static_cast<blasint>(v); }

// Codebook levels as two 8-entry register tables (levels 0-7 and 8-15; codebooks have at most 16).
struct LevelTable {
  __m256 lo, hi;
};

LevelTable level_table(const Codebook& cb) {
  LORDS_ASSERT(cb.levels.size() <= 16);
  float t[16] = {};
  for (size_t i = 0; i < cb.levels.size(); ++i) t[i] = cb.levels[i];
  return {_mm256_loadu_ps(t), _mm256_loadu_ps(t + 8)};
}

// level[q[0..8)]: both tables are looked up by the low 3 bits of the code, bit 3 picks the table.
inline __m256 lookup_levels(const LevelTable& t, const uint8_t* q) {
  int64_t bytes;
  std::memcpy(&bytes, q, 8);
  const __m256i idx = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(bytes));
  const __m256 lo = _mm256_permutevar8x32_ps(t.lo, idx);
  const __m256 hi = _mm256_permutevar8x32_ps(t.hi, idx);
  return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}

// Four lanes of the objective in double: E = L S - W (L S is exact in double, so the fused multiply-
// subtract rounds exactly like the scalar tail), acc += d E^2; returns d E L for the gradient.
inline __m256d objective_lanes(__m128 L4, __m128 s4, __m128 w4, const float* d4, __m256d* acc) {
  const __m256d L = _mm256_cvtps_pd(L4);
  const __m256d e = _mm256_fmsub_pd(L, _mm256_cvtps_pd(s4), _mm256_cvtps_pd(w4));
  const __m256d de = d4 != nullptr ? _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(d4)), e) : e;
  *acc = _mm256_fmadd_pd(de, e, *acc);
  return _mm256_mul_pd(de, L);
}

// sum_k d_k (W - L S)^2 of one row, with E in double. If g is given it receives d_k E_k L_k (the
// unnormalized gradient of f/2 with respect to S).
double row_objective(const float* w, const float* s, const uint8_t* q, int64_t K, const Codebook& cb,
                     const LevelTable& table, const float* d, float* g) {
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();  // independent partial sums
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    const __m256 L = lookup_levels(table, q + k), sv = _mm256_loadu_ps(s + k), wv = _mm256_loadu_ps(w + k);
    const __m256d g0 = objective_lanes(_mm256_castps256_ps128(L), _mm256_castps256_ps128(sv),
                                       _mm256_castps256_ps128(wv), d != nullptr ? d + k : nullptr, &acc0);
    const __m256d g1 = objective_lanes(_mm256_extractf128_ps(L, 1), _mm256_extractf128_ps(sv, 1),
                                       _mm256_extractf128_ps(wv, 1), d != nullptr ? d + k + 4 : nullptr, &acc1);
    if (g != nullptr) {
      _mm_storeu_ps(g + k, _mm256_cvtpd_ps(g0));
      _mm_storeu_ps(g + k + 4, _mm256_cvtpd_ps(g1));
    }
  }
  double lanes[4];
  _mm256_storeu_pd(lanes, _mm256_add_pd(acc0, acc1));
  double tail = 0;
  for (; k < K; ++k) {
    const float L = cb.levels[q[k]];
    const double e = static_cast<double>(L) * s[k] - w[k];
    const double de = d != nullptr ? d[k] * e : e;
    tail += de * e;
    if (g != nullptr) g[k] = static_cast<float>(de * L);
  }
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + tail;
}

// f over all rows for the codes q_in, or with the Q-step fused in front when q_out is given (codes are
// written there and used), and the gradient buffer g filled when given. Row sums are added in row order,
// so f does not depend on the thread count.
double eval_rows(const float* W, const float* S, int64_t N, int64_t K, const Codebook& cb, const float* d,
                 const uint8_t* q_in, uint8_t* q_out, float* g) {
  const uint8_t zero = cb.nearest(0.0f);
  const LevelTable table = level_table(cb);
  std::vector<double> row_f(static_cast<size_t>(N));
  detail::parallel_chunks(N, detail::rows_per_chunk(K), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const int64_t o = n * K;
      if (q_out != nullptr) detail::nearest_codes(W + o, S + o, 1, K, cb, zero, q_out + o);
      const uint8_t* q = q_out != nullptr ? q_out : q_in;
      row_f[static_cast<size_t>(n)] = row_objective(W + o, S + o, q + o, K, cb, table, d, g != nullptr ? g + o : nullptr);
    }
  });
  double total = 0;
  for (double v : row_f) total += v;
  return total;
}

// ---- evaluation of an iterate -----------------------------------------------------------------------
// S = B A, its Q-step and f, in row chunks so that S (and Adam's d E L) never exist at full size (two
// chunk buffers instead of 2 N K floats). Chunks are large: with 4 MB chunks (cache-resident) the many
// small GEMMs and thread start-ups cost more than they saved on 2 cores.
constexpr int64_t kChunkElems = int64_t{1} << 23;  // floats per chunk buffer (32 MB)

struct EvalWork {
  detail::Scratch S;  // (rows, K) chunk of B A
  detail::Scratch g;  // (rows, K) chunk of d E L (Adam only)
  int64_t rows = 0;   // chunk height
};

void eval_prepare(int64_t N, int64_t K, bool grads, EvalWork* ws) {
  ws->rows = std::clamp<int64_t>(kChunkElems / K, 1, N);
  ws->S.resize(static_cast<size_t>(ws->rows * K));
  if (grads) ws->g.resize(static_cast<size_t>(ws->rows * K));
}

// Q-step codes (N, K) and f for the iterate sc. With gB (N, r) and gA (r, K) given, also the gradient
// of f/2: gB = (d E L) A^T, gA = B^T (d E L).
double evaluate(const float* W, const Codebook& cb, const float* d, const LowRankScale& sc, uint8_t* codes,
                EvalWork* ws, float* gB, float* gA) {
  const int64_t N = sc.N, K = sc.K, r = sc.r;
  double f = 0;
  for (int64_t n0 = 0; n0 < N; n0 += ws->rows) {
    const int64_t rows = std::min(ws->rows, N - n0);
    float* S = ws->S.data();
    if (r > 0) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, bi(rows), bi(K), bi(r), 1.0f, sc.B.data() + n0 * r,
                  bi(r), sc.A.data(), bi(K), 0.0f, S, bi(K));
    } else {
      std::fill(S, S + rows * K, 0.0f);
    }
    float* g = gB != nullptr ? ws->g.data() : nullptr;
    f += eval_rows(W + n0 * K, S, rows, K, cb, d, nullptr, codes + n0 * K, g);
    if (g != nullptr && r > 0) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, bi(rows), bi(r), bi(K), 1.0f, g, bi(K), sc.A.data(),
                  bi(K), 0.0f, gB + n0 * r, bi(r));
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, bi(r), bi(K), bi(rows), 1.0f, sc.B.data() + n0 * r,
                  bi(r), g, bi(K), n0 == 0 ? 0.0f : 1.0f, gA, bi(K));
    }
  }
  return f;
}

// ---- Adam (paper's refinement) ----------------------------------------------------------------------
struct AdamState {
  std::vector<float> gB, mB, vB;  // (N, r)
  std::vector<float> gA, mA, vA;  // (r, K)
  int t = 0;
};

// p -= Adam(g * g_scale) with torch's defaults (beta 0.9 / 0.999, eps 1e-8, bias correction).
void adam_update(float* p, const float* g_raw, float g_scale, float* m, float* v, int64_t n, float lr, int t) {
  constexpr float kBeta1 = 0.9f, kBeta2 = 0.999f, kEps = 1e-8f;
  const float bc1 = 1.0f - std::pow(kBeta1, static_cast<float>(t));
  const float bc2_sqrt = std::sqrt(1.0f - std::pow(kBeta2, static_cast<float>(t)));
  const float step = lr / bc1;
  for (int64_t i = 0; i < n; ++i) {
    const float g = g_raw[i] * g_scale;
    m[i] = kBeta1 * m[i] + (1.0f - kBeta1) * g;
    v[i] = kBeta2 * v[i] + (1.0f - kBeta2) * g * g;
    p[i] -= step * m[i] / (std::sqrt(v[i]) / bc2_sqrt + kEps);
  }
}

// One Adam step on loss = ||E||_F = sqrt(f): st->gB, st->gA hold the gradient of f/2 at the current
// iterate (from evaluate), so grad loss = that / sqrt(f).
void adam_step(double f, float lr, LowRankScale* sc, AdamState* st) {
  const float inv_loss = f > 0 ? static_cast<float>(1.0 / std::sqrt(f)) : 0.0f;
  ++st->t;
  adam_update(sc->B.data(), st->gB.data(), inv_loss, st->mB.data(), st->vB.data(), sc->N * sc->r, lr, st->t);
  adam_update(sc->A.data(), st->gA.data(), inv_loss, st->mA.data(), st->vA.data(), sc->r * sc->K, lr, st->t);
}

void check_scale(const LowRankScale& s) {
  LORDS_CHECK(s.N > 0 && s.K > 0 && s.r >= 0 && s.B.size() == static_cast<size_t>(s.N * s.r) &&
                  s.A.size() == static_cast<size_t>(s.r * s.K),
              ErrorKind::BadShape, "[lords] low-rank scale: N {}, K {}, r {} with |B| = {}, |A| = {}", s.N, s.K,
              s.r, s.B.size(), s.A.size());
}

}  // namespace

SolverKind solver_kind_from_name(const std::string& name) {
  if (name == "none") return SolverKind::None;
  if (name == "als") return SolverKind::Als;
  if (name == "adam") return SolverKind::Adam;
  LORDS_FAIL(ErrorKind::Usage, "[lords] unknown solver '{}', expected 'none', 'als' or 'adam'", name);
}

std::string solver_kind_name(SolverKind k) {
  switch (k) {
    case SolverKind::None: return "none";
    case SolverKind::Als: return "als";
    case SolverKind::Adam: return "adam";
  }
  return "none";
}

void q_step(const float* W, const float* S, int64_t N, int64_t K, const Codebook& cb, uint8_t* codes) {
  const uint8_t zero = cb.nearest(0.0f);
  detail::parallel_chunks(N, detail::rows_per_chunk(K), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) detail::nearest_codes(W + n * K, S + n * K, 1, K, cb, zero, codes + n * K);
  });
}

double lords_objective(const float* W, const float* S, const uint8_t* codes, int64_t N, int64_t K,
                       const Codebook& cb, const float* col_weight) {
  return eval_rows(W, S, N, K, cb, col_weight, codes, nullptr, nullptr);
}

void als_sweep(const float* W, const uint8_t* codes, const Codebook& cb, const float* col_weight,
               LowRankScale* scale) {
  check_scale(*scale);
  detail::AlsWork ws;
  detail::als_prepare(scale->N, scale->K, scale->r, &ws);
  detail::als_sweep_ws(W, codes, cb, col_weight, scale, &ws);
}

SolverResult refine_lords(const float* W, const Codebook& cb, const LowRankScale& init, const SolverOptions& opt) {
  check_scale(init);
  LORDS_CHECK(opt.steps >= 0, ErrorKind::Usage, "[lords] steps must be >= 0, got {}", opt.steps);
  const int64_t N = init.N, K = init.K, r = init.r;
  const size_t NK = static_cast<size_t>(N * K);
  const float* d = opt.col_weight;
  const bool adam = opt.kind == SolverKind::Adam;
  const int steps = opt.kind == SolverKind::None ? 0 : opt.steps;

  SolverResult res;
  res.scale = init;
  LowRankScale cur = init;
  // Two code buffers: `best` holds the best iterate's codes, the other one takes each new Q-step.
  std::vector<uint8_t> codes[2] = {std::vector<uint8_t>(NK), std::vector<uint8_t>(NK)};
  int best = 0, latest = 0;
  EvalWork ew;
  detail::AlsWork aw;
  AdamState st;
  eval_prepare(N, K, adam && steps > 0, &ew);
  if (steps > 0 && !adam) detail::als_prepare(N, K, r, &aw);
  if (steps > 0 && adam) {
    for (auto* v : {&st.gB, &st.mB, &st.vB}) v->assign(static_cast<size_t>(N * r), 0.0f);
    for (auto* v : {&st.gA, &st.mA, &st.vA}) v->assign(static_cast<size_t>(r * K), 0.0f);
  }
  float* gB = adam && steps > 0 ? st.gB.data() : nullptr;
  float* gA = adam && steps > 0 ? st.gA.data() : nullptr;

  double f = evaluate(W, cb, d, cur, codes[0].data(), &ew, gB, gA);
  res.init_objective = res.best_objective = f;
  res.history.reserve(static_cast<size_t>(steps) + 1);
  res.history.push_back(f);
  for (int step = 1; step <= steps; ++step) {
    if (adam) {
      adam_step(f, opt.lr, &cur, &st);
    } else {
      detail::als_sweep_ws(W, codes[latest].data(), cb, d, &cur, &aw);
    }
    latest = 1 - best;
    f = evaluate(W, cb, d, cur, codes[latest].data(), &ew, gB, gA);
    res.history.push_back(f);
    if (f < res.best_objective) {
      res.best_objective = f;
      res.best_step = step;
      res.scale.B = cur.B;
      res.scale.A = cur.A;
      best = latest;
    }
  }
  res.codes = std::move(codes[best]);
  return res;
}

void dequantize_lords(const LowRankScale& s, const uint8_t* codes, const Codebook& cb, float* W_hat) {
  check_scale(s);
  lowrank_product(s, W_hat);
  const float* lv = cb.levels.data();
  detail::parallel_chunks(s.N, detail::rows_per_chunk(s.K), [&](int64_t n0, int64_t n1) {
    for (int64_t i = n0 * s.K; i < n1 * s.K; ++i) W_hat[i] *= lv[codes[i]];
  });
}

}  // namespace lords::quant
