// Settings of one quantization run, shared by the CLI, the model pipeline and the checkpoint metadata.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "lords/core/dtype.h"
#include "lords/quant/codebook.h"
#include "lords/quant/lords_solver.h"

namespace lords::engine {

enum class Method { Lords, Rtn };
Method method_from_name(const std::string& name);  // "lords" | "rtn"
std::string method_name(Method m);

// What the quantizer minimizes for each linear (the paper's is Weight):
//   Weight  ||W - W_hat||^2
//   Act     sum_k E[x_k^2] (W - W_hat)_nk^2       (per-input-channel activation energy; LoRDS only)
//   Gptq    tr((W - W_hat) H (W - W_hat)^T), H = E[x x^T], by GPTQ error feedback (rtn = GPTQ baseline;
//           lords = GPTQ Q-steps alternating with ALS weighted by diag H)
enum class Objective { Weight, Act, Gptq };
Objective objective_from_name(const std::string& name);  // "weight" | "act" | "gptq"
std::string objective_name(Objective o);

// Default: every linear inside the decoder blocks; embeddings and the LM head are kept.
inline constexpr const char* kDefaultLayers =
    R"(^blk\.\d+\.(attn_(q|k|v|output)|ffn_(gate|up|down))\.weight$|^encoder\.layer\.\d+\..*\.weight$)";

struct QuantConfig {
  Method method = Method::Lords;
  int bits = 4;
  quant::CodebookKind codebook = quant::CodebookKind::NF;
  int64_t block = 128;      // G: block size of RTN, and of the init / parameter budget of LoRDS
  int64_t rank = 0;         // 0 = parity rank floor(N*K / (G*(N+K)))
  quant::SolverKind solver = quant::SolverKind::Als;
  int steps = -1;           // -1 = the solver's default: als 20 sweeps, adam 500 steps
  float lr = 1e-3f;         // adam
  DType scale_dtype = DType::F16;  // storage of B, A (lords) or block scales (rtn)
  std::string layers = kDefaultLayers;  // regex over internal names of linear weights
  Objective objective = Objective::Weight;
  bool act_order = false;   // gptq: quantize columns by decreasing diag(H)
  double damp = 0.01;       // gptq: H += damp * mean(diag H) * I
  int threads = 0;          // 0 = all cores
  int jobs = 0;             // layers quantized at once; 0 = auto

  int effective_steps() const;
  void validate() const;    // throws Error{Usage} on out-of-range settings
  nlohmann::json to_json() const;
};

}  // namespace lords::engine
