// Calibration-aware rounding with error feedback (GPTQ, Frantar et al. 2022). With H = E[x x^T] (K, K) the
// input second moment of a linear layer, minimize per row  (w - w_hat)^T H (w - w_hat)  by quantizing one
// column at a time and spreading its rounding error over the not-yet-quantized columns through the
// upper Cholesky factor of H^-1 (lazy batch updates of 128 columns, as in the paper).
//   gptq_blockwise   : the block-wise absmax format (a correctly configured GPTQ baseline): dampening,
//                      dead-column handling, optional act-order (static groups: with act-order the group
//                      scales are computed from the original weights so groups stay contiguous in K).
//   gptq_codes       : the same error feedback under a fixed per-element scale S (N, K) — the Q-step of
//                      LoRDS-GPTQ, which alternates it with ALS on B, A weighted by diag(H).
#pragma once

#include <cstdint>
#include <vector>

#include "lords/quant/blockwise.h"
#include "lords/quant/codebook.h"
#include "lords/quant/lords_solver.h"

namespace lords::quant {

struct GptqOptions {
  double damp = 0.01;      // dampening: H += damp * mean(diag H) * I
  bool act_order = false;  // quantize columns in order of decreasing diag(H)
  int64_t batch = 128;     // lazy-update block size
};

// H (K, K) row-major, symmetric positive semi-definite. Scales rounded through scale_round.
BlockwiseQuant gptq_blockwise(const float* W, int64_t N, int64_t K, int64_t G, const Codebook& cb,
                              const std::vector<double>& H, const GptqOptions& opt, float (*scale_round)(float));

// Codes (N, K) for W under the fixed scale S (N, K) with error feedback through H.
void gptq_codes(const float* W, const float* S, int64_t N, int64_t K, const Codebook& cb,
                const std::vector<double>& H, const GptqOptions& opt, uint8_t* codes);

// sum_n (w_n - w_hat_n)^T H (w_n - w_hat_n), in double.
double hessian_objective(const float* W, const float* W_hat, int64_t N, int64_t K, const std::vector<double>& H);

// LoRDS-GPTQ: from init, alternate gptq_codes (Q-step) and ALS sweeps weighted by diag(H); returns the best
// iterate by hessian_objective (history[0] = the init with a plain nearest Q-step).
SolverResult refine_lords_gptq(const float* W, const Codebook& cb, const LowRankScale& init,
                               const std::vector<double>& H, const GptqOptions& gopt, int steps);

}  // namespace lords::quant
