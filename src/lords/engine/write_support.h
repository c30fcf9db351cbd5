// Pieces every checkpoint-writing command shares: plain (unquantized) tensors copied through, the
// checkpoint metadata, and the side files (config.json, tokenizer files).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lords/engine/quant_config.h"
#include "lords/io/model_source.h"
#include "lords/io/safetensors.h"
#include "lords/model/weight_table.h"
#include "lords/quant/codebook.h"

namespace lords::engine {

// Plain tensors keep their stored dtype when it is F32/F16/BF16 and their bytes need no change;
// GGUF block types and permuted GGUF rows are written as F32 in HF layout. Names are HF names.
void declare_plain_tensors(const io::ModelSource& src, const std::vector<model::ResolvedWeight>& plain,
                           io::SafetensorsWriter* writer);
void write_plain_tensors(const io::ModelSource& src, const std::vector<model::ResolvedWeight>& plain,
                         io::SafetensorsWriter* writer);

std::map<std::string, std::string> checkpoint_metadata(const QuantConfig& config, const quant::Codebook& cb,
                                                       const nlohmann::json& layer_table,
                                                       const std::string& source);

// Writes config.json (with a "quantization_config" entry when config is given) and the tokenizer
// files into dir. For a GGUF source, the tokenizer.* metadata is written as tokenizer.gguf.json.
void write_model_files(const io::ModelSource& src, const std::optional<QuantConfig>& config,
                       const std::string& dir);

// Floats in a storage dtype (F32, F16 or BF16; round to nearest even), little-endian bytes.
std::vector<uint8_t> encode_floats(const std::vector<float>& v, DType dtype);

// Writes a JSON value with 2-space indentation atomically.
void write_json_file(const std::string& path, const nlohmann::json& j);

}  // namespace lords::engine
