// Text generation: prompt processing in one forward call, then one token at a time from the KV cache,
// choosing each token greedily (temperature 0) or by temperature + nucleus (top-p) sampling with a seed.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "lords/runtime/causal_lm.h"

namespace lords::runtime {

struct SamplingOptions {
  float temperature = 0.0f;  // 0 = greedy
  float top_p = 1.0f;        // nucleus mass kept, (0, 1]
  uint64_t seed = 0;
};

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  SamplingOptions sampling;
  std::optional<int32_t> stop_token;  // stop after emitting it (the tokenizer's EOS)
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated tokens only
  double prompt_seconds = 0, gen_seconds = 0;
};

// on_token is called with each new token as soon as it is chosen (for streaming).
GenerateResult generate(CausalLM& model, const std::vector<int32_t>& prompt, const GenerateOptions& opt,
                        const std::function<void(int32_t)>& on_token = {});

// Picks a token from one logits row (V). Deterministic for a given rng state.
int32_t sample_token(const float* logits, int64_t V, const SamplingOptions& opt, uint64_t* rng_state);

}  // namespace lords::runtime
