#include "common/random_model.h"

#include <cmath>
#include <fstream>
#include <random>

#include "lords/core/dtype.h"
#include "lords/engine/write_support.h"
#include "lords/io/safetensors.h"
#include "lords/model/model_config.h"
#include "lords/model/weight_table.h"

namespace lords::test {

nlohmann::json random_model_config(const RandomModelSpec& s) {
  return {{"model_type", s.model_type},
          {"architectures", {s.model_type == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
          {"hidden_size", s.hidden},
          {"intermediate_size", s.intermediate},
          {"num_hidden_layers", s.layers},
          {"num_attention_heads", s.heads},
          {"num_key_value_heads", s.kv_heads},
          {"vocab_size", s.vocab},
          {"max_position_embeddings", 256},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 10000.0},
          {"tie_word_embeddings", s.tie_embeddings},
          {"torch_dtype", "float32"}};
}

void write_random_model(const std::string& dir, const RandomModelSpec& s) {
  const nlohmann::json config = random_model_config(s);
  std::ofstream(dir + "/config.json") << config.dump(2);
  const model::ModelConfig mc = model::parse_model_config(config, dir + "/config.json");
  DType dtype = DType::F32;
  dtype_from_name(s.dtype, &dtype);
  io::SafetensorsWriter writer(dir + "/model.safetensors");
  std::vector<model::WeightSpec> table = model::weight_table(mc);
  std::erase_if(table, [](const model::WeightSpec& w) { return !w.required; });
  for (const auto& w : table) writer.declare(w.hf, dtype, w.shape);
  writer.begin();
  std::mt19937 rng(s.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::chi_squared_distribution<float> chi2(4.0f);
  for (const auto& w : table) {
    std::vector<float> v(static_cast<size_t>(shape_numel(w.shape)));
    if (w.role == model::WeightRole::Norm) {
      for (float& x : v) x = 1.0f + 0.1f * normal(rng);
    } else {
      // Like trained weights: Student-t (4 dof) entries (heavy tails) times log-normal row and column
      // scales (outlier channels), overall 1/sqrt(K).
      const int64_t cols = w.shape.back(), rows = static_cast<int64_t>(v.size()) / cols;
      std::vector<float> row_scale(static_cast<size_t>(rows)), col_scale(static_cast<size_t>(cols));
      for (float& x : row_scale) x = std::exp(0.4f * normal(rng));
      for (float& x : col_scale) x = std::exp(0.4f * normal(rng)) / std::sqrt(static_cast<float>(cols));
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j)
          v[static_cast<size_t>(i * cols + j)] = row_scale[static_cast<size_t>(i)] *
                                                 col_scale[static_cast<size_t>(j)] * normal(rng) /
                                                 std::sqrt(chi2(rng) / 4.0f);
    }
    const std::vector<uint8_t> bytes = engine::encode_floats(v, dtype);
    writer.write(w.hf, bytes.data(), bytes.size());
  }
  writer.commit();
}

}  // namespace lords::test
