// Quantizes one linear weight W (N, K) with block-wise RTN or LoRDS, and dequantizes it again.
// The stored scales (block scales, or B and A) are rounded to their storage dtype *before* the final
// Q-step, so the codes are optimal for what is stored and dequantize_linear() of a loaded checkpoint
// reproduces the in-memory W_hat bit for bit.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lords/engine/quant_config.h"
#include "lords/quant/blockwise.h"
#include "lords/quant/codebook.h"
#include "lords/quant/lords_init.h"

namespace lords::engine {

struct QuantizedLinear {
  Method method = Method::Lords;
  int64_t N = 0, K = 0;
  quant::BlockwiseQuant rtn;      // rtn: codes (N, K) and block scales, scales rounded to the storage dtype
  std::vector<uint8_t> lords_codes;  // lords: (N, K)
  quant::LowRankScale lowrank;    // lords: B (N, r), A (r, K), rounded to the storage dtype

  const std::vector<uint8_t>& codes() const { return method == Method::Rtn ? rtn.codes : lords_codes; }
};

struct LinearStats {
  std::string name;
  int64_t N = 0, K = 0, rank = 0, block = 0;
  double w_sq = 0;          // ||W||^2
  double err_sq = 0;        // ||W - W_hat||^2 of what is stored
  double init_err_sq = 0;   // lords: ||W - W_hat||^2 at the SVD init (after its Q-step)
  double svd_rel_err = 0;   // lords: ||S - BA|| / ||S||
  int best_step = 0;        // lords: iterate the solver returned (0 = init)
  double seconds = 0;
  double scale_floats = 0;  // stored scale parameters (B+A, or block scales)
  double out_sq = 0;        // with H: tr(W H W^T), the output energy
  double out_err_sq = 0;    // with H: tr(E H E^T), the output error of what is stored
};

// H (K, K): the input second moment E[x x^T] of this linear, required by objectives Act and Gptq
// (Act uses its diagonal). Errors in stats stay plain weight errors ||W - W_hat||; err_h / init_err_h
// hold the objective's own value when H is given.
QuantizedLinear quantize_linear(const float* W, int64_t N, int64_t K, const QuantConfig& config,
                                const quant::Codebook& cb, LinearStats* stats,
                                const std::vector<double>* H = nullptr);
void dequantize_linear(const QuantizedLinear& q, const quant::Codebook& cb, float* W_hat);

}  // namespace lords::engine
