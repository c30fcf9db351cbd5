// LoRDS refinement: minimize  f(Q, B, A) = sum_nk d_k (W_nk - level[Q_nk] * (B A)_nk)^2
// over codes Q and the low-rank scale B (N, r), A (r, K); d_k >= 0 are optional per-input-channel
// weights (activation energy; all ones = the paper's weight-only objective).
// Alternates
//   Q-step: Q_nk = nearest level of W_nk / S_nk (exact minimizer for fixed S, any sign of S), and
//   scale step, one of
//     als  : exact alternating least squares: every row b_n solves the r x r normal equations
//            (sum_k d_k L_nk^2 a_k a_k^T) b_n = sum_k d_k L_nk W_nk a_k, then every column a_k likewise.
//            Both are formed with two GEMMs each (the r(r+1)/2 outer-product trick) and solved by Cholesky.
//     adam : the paper's algorithm: one Adam step (lr 1e-3 by default) on the Frobenius norm ||E||_F
//            of the residual E = L (.) BA - W per alternation.
// The solver tracks the best iterate by f (evaluated after each Q-step) and returns it: the result is
// never worse than the initialization.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lords/quant/codebook.h"
#include "lords/quant/lords_init.h"

namespace lords::quant {

enum class SolverKind { None, Als, Adam };
SolverKind solver_kind_from_name(const std::string& name);  // "none" | "als" | "adam"; throws on others
std::string solver_kind_name(SolverKind k);

struct SolverOptions {
  SolverKind kind = SolverKind::Als;
  int steps = 20;              // alternations (ALS sweeps or Adam steps)
  float lr = 1e-3f;            // Adam learning rate
  const float* col_weight = nullptr;  // (K) d_k, or nullptr for all ones
};

struct SolverResult {
  LowRankScale scale;          // best iterate
  std::vector<uint8_t> codes;  // (N, K) Q-step codes for the best scale
  double init_objective = 0;   // f at the initialization (after its Q-step)
  double best_objective = 0;   // f at the returned iterate
  int best_step = 0;           // 0 = the initialization
  std::vector<double> history; // f after each Q-step, history[0] = init
};

// Q-step: codes (N, K) for scale S (N, K) materialized.
void q_step(const float* W, const float* S, int64_t N, int64_t K, const Codebook& cb, uint8_t* codes);
// f(Q, S) with optional column weights; accumulated in double.
double lords_objective(const float* W, const float* S, const uint8_t* codes, int64_t N, int64_t K,
                       const Codebook& cb, const float* col_weight);
// One exact ALS sweep (B then A) for fixed codes; updates scale in place.
void als_sweep(const float* W, const uint8_t* codes, const Codebook& cb, const float* col_weight,
               LowRankScale* scale);

SolverResult refine_lords(const float* W, const Codebook& cb, const LowRankScale& init,
                          const SolverOptions& opt);

// W_hat = level[Q] (.) (B A)  (N, K).
void dequantize_lords(const LowRankScale& s, const uint8_t* codes, const Codebook& cb, float* W_hat);

}  // namespace lords::quant
