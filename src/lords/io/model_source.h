// Opens a model wherever it lives: a Hugging Face directory (config.json + model.safetensors, or sharded
// shards with model.safetensors.index.json) or a single GGUF file. Everything downstream sees one
// TensorIndex plus an HF-style config JSON (synthesized from GGUF metadata when the source is GGUF).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lords/io/tensor_index.h"

namespace lords::io {

enum class SourceKind { HfDir, Gguf };

struct ModelSource {
  SourceKind kind = SourceKind::HfDir;
  std::string path;                                 // the directory or the .gguf file
  std::string config_path;                          // config.json (HF), or the gguf file itself
  nlohmann::json config;                            // HF config.json, or synthesized from GGUF metadata
  nlohmann::json gguf_metadata;                     // GGUF key/values (empty for HF)
  TensorIndex index;                                // names as stored in the source files
  std::map<std::string, std::string> st_metadata;   // merged safetensors __metadata__ (HF)
  std::vector<std::string> aux_files;               // tokenizer/generation files to copy through (HF)
};

// Throws Error naming the path and the problem (missing config.json, index listing a missing shard, ...).
ModelSource open_model(const std::string& path);

}  // namespace lords::io
