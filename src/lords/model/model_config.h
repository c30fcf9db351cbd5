// The architecture hyper-parameters lords needs, parsed from an HF config.json (or the config that
// io::open_model synthesizes from GGUF metadata). Supported: Llama-family decoders (llama, mistral,
// qwen2; SmolLM is model_type llama). "bert" is accepted for quantization only (real fp32 encoder
// weights to measure PTQ error on), never for the runtime.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace lords::model {

enum class Arch { Llama, Mistral, Qwen2, Bert };

struct ModelConfig {
  Arch arch = Arch::Llama;
  std::string model_type;      // as written in config.json
  int64_t hidden = 0;          // hidden_size
  int64_t intermediate = 0;    // intermediate_size
  int64_t n_layer = 0;         // num_hidden_layers
  int64_t n_head = 0;          // num_attention_heads
  int64_t n_head_kv = 0;       // num_key_value_heads (defaults to n_head)
  int64_t head_dim = 0;        // head_dim (defaults to hidden / n_head)
  int64_t vocab = 0;           // vocab_size
  int64_t max_pos = 0;         // max_position_embeddings
  double rms_eps = 1e-6;       // rms_norm_eps
  double rope_theta = 10000;   // rope_theta
  bool tie_embeddings = false; // tie_word_embeddings
  nlohmann::json rope_scaling; // null or the rope_scaling object

  bool is_decoder() const { return arch != Arch::Bert; }
};

// path names the file in error messages. Throws Error{Format} for a missing/ill-typed key and
// Error{Unsupported} for an unknown model_type.
ModelConfig parse_model_config(const nlohmann::json& config, const std::string& path);

}  // namespace lords::model
