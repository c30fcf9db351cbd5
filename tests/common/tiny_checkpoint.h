// Lords checkpoints and QLoRA adapter files with exactly the values a test chooses (codes, B, A,
// block scales, all stored F32 so nothing is rounded), for tests of code that reads fine-tuning
// results. config.json is the random model's (random_model.h), so HF and internal layer names
// resolve.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lords/engine/linear_quant.h"

namespace lords::test {

struct TinyLayer {
  std::string name;           // HF name, e.g. "model.layers.0.mlp.up_proj.weight"
  engine::QuantizedLinear q;  // method, N, K, codes and scales filled in
};

// A LoRDS linear: codes (N, K), B (N, r), A (r, K).
TinyLayer tiny_lords_layer(const std::string& name,
                           int64_t N,
                           int64_t K,
                           std::vector<uint8_t> codes,
                           std::vector<float> B,
                           std::vector<float> A,
                           int64_t r);
// An RTN linear: codes (N, K), block scales (N, ceil(K / G)).
TinyLayer tiny_rtn_layer(const std::string& name,
                         int64_t N,
                         int64_t K,
                         int64_t G,
                         std::vector<uint8_t> codes,
                         std::vector<float> scales);

// Writes config.json + model.safetensors (4-bit NF codebook) into dir, which must exist. Every
// layer must have the same method.
void write_tiny_checkpoint(const std::string& dir, const std::vector<TinyLayer>& layers);

// Metadata names of adapters.safetensors: ours (docs/FORMAT.md, train_model_save.cpp: format
// lords-lora, lora.rank, lora.alpha) or peft-style (lora_rank, lora_alpha).
enum class AdapterKeys { Lords, Peft };

struct TinyAdapter {
  std::string name;         // the adapted linear
  std::vector<float> A, B;  // A (r, K), B (N, r)
  int64_t N = 0, K = 0, r = 0;
  double alpha = 0;
  AdapterKeys keys = AdapterKeys::Lords;
};
// Writes dir/adapters.safetensors: "<name>.lora_A", "<name>.lora_B" F32 and the rank and alpha
// metadata.
void write_lora_adapters(const std::string& dir, const TinyAdapter& adapter);

// n values uniform in [-1, 1) from a seeded generator.
std::vector<float> uniform_floats(size_t n, uint32_t seed);

}  // namespace lords::test
