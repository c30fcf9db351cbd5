#include "lords/model/model_config.h"

#include "lords/core/error.h"

namespace lords::model {
namespace {

int64_t get_int(const nlohmann::json& c, const char* key, const std::string& path) {
  LORDS_CHECK(c.contains(key), ErrorKind::Format, "{}: missing required key '{}'", path, key);
  LORDS_CHECK(c[key].is_number_integer() && c[key].get<int64_t>() > 0, ErrorKind::Format,
              "{}: key '{}' must be a positive integer, got {}", path, key, c[key].dump());
  return c[key].get<int64_t>();
}

int64_t get_int_or(const nlohmann::json& c, const char* key, int64_t fallback, const std::string& path) {
  if (!c.contains(key) || c[key].is_null()) return fallback;
  return get_int(c, key, path);
}

double get_num_or(const nlohmann::json& c, const char* key, double fallback, const std::string& path) {
  if (!c.contains(key) || c[key].is_null()) return fallback;
  LORDS_CHECK(c[key].is_number(), ErrorKind::Format, "{}: key '{}' must be a number, got {}", path, key,
              c[key].dump());
  return c[key].get<double>();
}

}  // namespace

ModelConfig parse_model_config(const nlohmann::json& c, const std::string& path) {
  LORDS_CHECK(c.is_object(), ErrorKind::Format, "{}: config is not a JSON object", path);
  LORDS_CHECK(c.contains("model_type") && c["model_type"].is_string(), ErrorKind::Format,
              "{}: missing required key 'model_type'", path);
  ModelConfig m;
  m.model_type = c["model_type"].get<std::string>();
  if (m.model_type == "llama") {
    m.arch = Arch::Llama;
  } else if (m.model_type == "mistral") {
    m.arch = Arch::Mistral;
  } else if (m.model_type == "qwen2") {
    m.arch = Arch::Qwen2;
  } else if (m.model_type == "bert") {
    m.arch = Arch::Bert;
  } else {
    LORDS_FAIL(ErrorKind::Unsupported,
               "{}: unknown architecture '{}' (supported: llama, mistral, qwen2; bert for quantization only)",
               path, m.model_type);
  }
  m.hidden = get_int(c, "hidden_size", path);
  m.intermediate = get_int(c, "intermediate_size", path);
  m.n_layer = get_int(c, "num_hidden_layers", path);
  m.n_head = get_int(c, "num_attention_heads", path);
  m.vocab = get_int(c, "vocab_size", path);
  m.max_pos = get_int_or(c, "max_position_embeddings", 2048, path);
  if (m.arch == Arch::Bert) return m;
  m.n_head_kv = get_int_or(c, "num_key_value_heads", m.n_head, path);
  m.head_dim = get_int_or(c, "head_dim", m.hidden / m.n_head, path);
  LORDS_CHECK(m.n_head % m.n_head_kv == 0, ErrorKind::Format,
              "{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", path, m.n_head,
              m.n_head_kv);
  m.rms_eps = get_num_or(c, "rms_norm_eps", 1e-6, path);
  m.rope_theta = get_num_or(c, "rope_theta", 10000.0, path);
  if (c.contains("tie_word_embeddings")) {
    LORDS_CHECK(c["tie_word_embeddings"].is_boolean(), ErrorKind::Format,
                "{}: key 'tie_word_embeddings' must be a boolean", path);
    m.tie_embeddings = c["tie_word_embeddings"].get<bool>();
  }
  if (c.contains("rope_scaling")) m.rope_scaling = c["rope_scaling"];
  return m;
}

}  // namespace lords::model
