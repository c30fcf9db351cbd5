#include "lords/engine/quant_config.h"

#include <regex>

#include "lords/core/error.h"

namespace lords::engine {

Method method_from_name(const std::string& name) {
  if (name == "lords") return Method::Lords;
  if (name == "rtn") return Method::Rtn;
  LORDS_FAIL(ErrorKind::Usage, "unknown method '{}' (expected lords or rtn)", name);
}

std::string method_name(Method m) { return m == Method::Lords ? "lords" : "rtn"; }

Objective objective_from_name(const std::string& name) {
  if (name == "weight") return Objective::Weight;
  if (name == "act") return Objective::Act;
  if (name == "gptq") return Objective::Gptq;
  LORDS_FAIL(ErrorKind::Usage, "unknown objective '{}' (expected weight, act or gptq)", name);
}

std::string objective_name(Objective o) {
  return o == Objective::Weight ? "weight" : o == Objective::Act ? "act" : "gptq";
}

int QuantConfig::effective_steps() const {
  if (steps >= 0) return steps;
  // LoRDS-GPTQ: each alternation is a full GPTQ pass (O(N K^2)); a few reach most of the gain.
  if (method == Method::Lords && objective == Objective::Gptq) return 4;
  return solver == quant::SolverKind::Adam ? 500 : solver == quant::SolverKind::Als ? 20 : 0;
}

void QuantConfig::validate() const {
  LORDS_CHECK(bits >= 2 && bits <= 4, ErrorKind::Usage, "--bits must be 2, 3 or 4, got {}", bits);
  LORDS_CHECK(block >= 8 && block <= 4096, ErrorKind::Usage, "--block must be in [8, 4096], got {}", block);
  LORDS_CHECK(rank >= 0 && rank <= 1024, ErrorKind::Usage, "--rank must be in [0, 1024], got {}", rank);
  LORDS_CHECK(steps >= -1 && steps <= 100000, ErrorKind::Usage, "--steps must be in [0, 100000], got {}", steps);
  LORDS_CHECK(lr > 0 && lr < 1, ErrorKind::Usage, "--lr must be in (0, 1), got {}", lr);
  LORDS_CHECK(scale_dtype == DType::F16 || scale_dtype == DType::BF16 || scale_dtype == DType::F32,
              ErrorKind::Usage, "--scale-dtype must be f16, bf16 or f32");
  LORDS_CHECK(!(method == Method::Rtn && objective == Objective::Act), ErrorKind::Usage,
              "--objective act applies to --method lords only (use gptq for a calibrated block-wise baseline)");
  LORDS_CHECK(damp > 0 && damp < 1, ErrorKind::Usage, "--damp must be in (0, 1), got {}", damp);
  LORDS_CHECK(threads >= 0 && jobs >= 0, ErrorKind::Usage, "--threads and --jobs must be >= 0");
  try {
    std::regex re(layers);
  } catch (const std::regex_error& e) {
    LORDS_FAIL(ErrorKind::Usage, "--layers: invalid regular expression '{}': {}", layers, e.what());
  }
}

nlohmann::json QuantConfig::to_json() const {
  nlohmann::json j;
  j["method"] = method_name(method);
  j["bits"] = bits;
  j["codebook"] = codebook == quant::CodebookKind::NF ? "nf" : "int";
  j["block"] = block;
  j["rank"] = rank == 0 ? nlohmann::json("parity") : nlohmann::json(rank);
  if (method == Method::Lords) {
    j["solver"] = quant::solver_kind_name(solver);
    j["steps"] = effective_steps();
    if (solver == quant::SolverKind::Adam) j["lr"] = lr;
  }
  j["objective"] = objective_name(objective);
  if (objective == Objective::Gptq) {
    j["act_order"] = act_order;
    j["damp"] = damp;
  }
  j["scale_dtype"] = std::string(dtype_name(scale_dtype));
  j["layers"] = layers;
  return j;
}

}  // namespace lords::engine
