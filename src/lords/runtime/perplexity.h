// Perplexity with the llama.cpp protocol: the token stream is cut into chunks of n_ctx tokens, each
// evaluated from an empty cache (BOS replacing its first token when the tokenizer adds one), and only
// the second half of each chunk is scored (every scored token has at least n_ctx/2 tokens of context).
// Protocol "full" scores every token of a chunk but the first instead (whole-context token PPL).
// With a base model, the KL divergence KL(P_base || P_model) and the top-1 agreement are averaged over
// the same scored tokens, as llama.cpp's --kl-divergence does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lords/runtime/causal_lm.h"

namespace lords::runtime {

enum class PplProtocol { SecondHalf, Full };

struct PerplexityOptions {
  int64_t n_ctx = 512;
  int64_t max_chunks = 0;  // 0 = all
  PplProtocol protocol = PplProtocol::SecondHalf;
  std::optional<int32_t> bos;  // replaces the first token of every chunk when set
  bool progress = true;
};

struct PerplexityResult {
  int64_t chunks = 0, scored = 0;
  double nll = 0;        // mean negative log-likelihood (nats)
  double nll_se = 0;     // its standard error
  double ppl() const;
  // With a base model:
  bool has_kl = false;
  double kl = 0, kl_se = 0, top1 = 0;
  double seconds = 0;
  nlohmann::json to_json() const;
};

// model and base may run on different devices.
PerplexityResult perplexity(CausalLM& model, const std::vector<int32_t>& tokens, const PerplexityOptions& opt,
                            CausalLM* base = nullptr);

}  // namespace lords::runtime
