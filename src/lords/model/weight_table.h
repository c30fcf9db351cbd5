// The one name table: every weight of a supported architecture with its internal (GGUF-style) name,
// its Hugging Face name, its GGUF name, expected shape and role. resolve_weights() matches a model
// source against it, checking presence and shapes, and load_weight() reads one weight as fp32 in HF
// layout (undoing llama.cpp's rotary row permutation of attn_q/attn_k in llama-architecture GGUFs).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lords/core/tensor.h"
#include "lords/io/model_source.h"
#include "lords/model/model_config.h"

namespace lords::model {

enum class WeightRole { Linear, Embedding, Norm, Bias, Other };

struct WeightSpec {
  std::string internal;  // "blk.3.attn_q.weight"
  std::string hf;        // "model.layers.3.self_attn.q_proj.weight"
  std::string gguf;      // "blk.3.attn_q.weight" (empty where GGUF has no such tensor)
  Shape shape;           // HF shape, (N, K) for linears
  WeightRole role = WeightRole::Other;
  bool required = true;
  int64_t rope_heads = 0;  // > 0: rows are rotary heads that llama GGUFs store permuted
};

std::vector<WeightSpec> weight_table(const ModelConfig& config);

struct ResolvedWeight {
  WeightSpec spec;
  std::string source_name;  // name in the source index
};

// Every tensor of the source, in a stable order (table order, then extra tensors by name).
// Throws naming the file for a missing required tensor, a shape mismatch (expected vs got) or an
// unknown GGUF tensor. Extra HF tensors are passed through with role Other.
std::vector<ResolvedWeight> resolve_weights(const io::ModelSource& source, const ModelConfig& config);

// The weight as fp32 in HF layout.
HostTensor load_weight(const io::ModelSource& source, const ResolvedWeight& w);

}  // namespace lords::model
