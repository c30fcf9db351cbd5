// config.json parsing and the weight name table.
#include <gtest/gtest.h>

#include "lords/core/error.h"
#include "lords/model/model_config.h"
#include "lords/model/weight_table.h"

using namespace lords;

namespace {

nlohmann::json llama_config() {
  return {{"model_type", "llama"},       {"hidden_size", 576},        {"intermediate_size", 1536},
          {"num_hidden_layers", 2},      {"num_attention_heads", 9},  {"num_key_value_heads", 3},
          {"vocab_size", 49152},         {"rms_norm_eps", 1e-5},      {"rope_theta", 100000.0},
          {"tie_word_embeddings", true}, {"max_position_embeddings", 8192}};
}

void expect_error(const nlohmann::json& c, const std::string& phrase) {
  try {
    model::parse_model_config(c, "cfg/config.json");
    FAIL() << phrase;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cfg/config.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
  }
}

TEST(ModelConfig, ParsesAndDerivesDefaults) {
  const model::ModelConfig m = model::parse_model_config(llama_config(), "config.json");
  EXPECT_EQ(m.arch, model::Arch::Llama);
  EXPECT_EQ(m.head_dim, 64);
  EXPECT_EQ(m.n_head_kv, 3);
  EXPECT_TRUE(m.tie_embeddings);
  EXPECT_DOUBLE_EQ(m.rope_theta, 100000.0);
}

TEST(ModelConfig, ErrorsNameTheFileAndTheKey) {
  nlohmann::json c = llama_config();
  c.erase("vocab_size");
  expect_error(c, "missing required key 'vocab_size'");
  c = llama_config();
  c["hidden_size"] = "576";
  expect_error(c, "'hidden_size' must be a positive integer");
  c = llama_config();
  c["num_key_value_heads"] = 4;
  expect_error(c, "not a multiple");
  c = llama_config();
  c["model_type"] = "falcon";
  expect_error(c, "unknown architecture 'falcon'");
  expect_error(nlohmann::json::array(), "not a JSON object");
}

TEST(WeightTable, ShapesAndNamesOfALlamaLayer) {
  const model::ModelConfig m = model::parse_model_config(llama_config(), "config.json");
  const auto t = model::weight_table(m);
  ASSERT_EQ(t.size(), 1 + 2 * 9 + 2);  // embed, 9 per layer, norm, (untied) head
  const auto& k = t[3];
  EXPECT_EQ(k.internal, "blk.0.attn_k.weight");
  EXPECT_EQ(k.hf, "model.layers.0.self_attn.k_proj.weight");
  EXPECT_EQ(k.shape, (Shape{192, 576}));
  EXPECT_EQ(k.rope_heads, 3);  // llama GGUFs permute k rows per kv head
  EXPECT_FALSE(t.back().required);  // tied: no lm_head expected
  nlohmann::json q = llama_config();
  q["model_type"] = "qwen2";
  const auto tq = model::weight_table(model::parse_model_config(q, "config.json"));
  EXPECT_EQ(tq.size(), 1 + 2 * 12 + 2);  // + q/k/v biases
  EXPECT_EQ(tq[2].rope_heads, 0);        // qwen2 GGUFs are not permuted
}

}  // namespace
