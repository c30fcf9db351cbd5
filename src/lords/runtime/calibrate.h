// Calibration statistics for calibration-aware quantization: run the (unquantized) model over
// calibration text in chunks and accumulate, for the input x of every linear layer, the second moment
// H = E[x x^T] (K, K). Layers reading the same input share one matrix: q/k/v (attn_norm output),
// gate/up (ffn_norm output); o_proj and down_proj have their own.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lords/engine/quantize_model.h"
#include "lords/runtime/llama_model.h"

namespace lords::runtime {

struct CalibrationOptions {
  int64_t n_ctx = 512;        // tokens per chunk (each from an empty cache)
  int64_t max_tokens = 16384; // calibration budget
  bool progress = true;
};

engine::CalibrationStats collect_calibration(LlamaModel& model, const std::vector<int32_t>& tokens,
                                             const std::string& text_name, const CalibrationOptions& opt);

}  // namespace lords::runtime
