// Small seeded random Llama-family models that the tests write themselves (HF directory layout:
// config.json + model.safetensors), so no test depends on the network or a downloaded model.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace lords::test {

struct RandomModelSpec {
  std::string model_type = "llama";  // llama | qwen2 | mistral
  int64_t hidden = 64, intermediate = 160, layers = 2, heads = 4, kv_heads = 2, vocab = 96;
  bool tie_embeddings = false;
  std::string dtype = "F32";  // F32 | F16 | BF16 storage of every tensor
  uint32_t seed = 1;
};

nlohmann::json random_model_config(const RandomModelSpec& spec);
// Writes config.json and model.safetensors into dir (which must exist).
void write_random_model(const std::string& dir, const RandomModelSpec& spec);

}  // namespace lords::test
