#include "lords/engine/write_support.h"

#include <cstring>
#include <filesystem>

#include "lords/core/atomic_output.h"
#include "lords/core/error.h"
#include "lords/engine/checkpoint.h"

namespace lords::engine {
namespace {

// The stored dtype if its bytes can be copied as they are; nullopt when the tensor must be converted.
std::optional<DType> copyable_dtype(const io::ModelSource& src, const model::ResolvedWeight& w) {
  const io::TensorInfo& info = src.index.at(w.source_name);
  DType t;
  if (!dtype_from_name(info.dtype, &t)) return std::nullopt;  // a GGUF block type
  if (src.kind == io::SourceKind::Gguf && w.spec.rope_heads > 0) return std::nullopt;
  return t;
}

}  // namespace

void declare_plain_tensors(const io::ModelSource& src, const std::vector<model::ResolvedWeight>& plain,
                           io::SafetensorsWriter* writer) {
  for (const auto& w : plain)
    writer->declare(w.spec.hf, copyable_dtype(src, w).value_or(DType::F32), src.index.at(w.source_name).shape);
}

void write_plain_tensors(const io::ModelSource& src, const std::vector<model::ResolvedWeight>& plain,
                         io::SafetensorsWriter* writer) {
  for (const auto& w : plain) {
    if (copyable_dtype(src, w)) {
      const io::TensorInfo& info = src.index.at(w.source_name);
      writer->write(w.spec.hf, src.index.raw(w.source_name), info.nbytes);
    } else {
      const HostTensor t = model::load_weight(src, w);
      writer->write(w.spec.hf, t.data.data(), t.data.size() * sizeof(float));
    }
  }
}

std::map<std::string, std::string> checkpoint_metadata(const QuantConfig& config, const quant::Codebook& cb,
                                                       const nlohmann::json& layer_table,
                                                       const std::string& source) {
  std::map<std::string, std::string> m;
  m["format"] = kFormatName;
  m["format_version"] = kFormatVersion;
  m["lords.settings"] = config.to_json().dump();
  m["lords.levels"] = nlohmann::json(cb.levels).dump();  // nlohmann prints floats round-trip exact
  m["lords.layers"] = layer_table.dump();
  m["lords.source"] = std::filesystem::path(source).filename().string();
  return m;
}

std::vector<uint8_t> encode_floats(const std::vector<float>& v, DType dtype) {
  std::vector<uint8_t> out(v.size() * dtype_size(dtype));
  for (size_t i = 0; i < v.size(); ++i) {
    if (dtype == DType::F32) {
      std::memcpy(&out[i * 4], &v[i], 4);
    } else {
      const uint16_t h = dtype == DType::F16 ? f32_to_fp16(v[i]) : f32_to_bf16(v[i]);
      std::memcpy(&out[i * 2], &h, 2);
    }
  }
  return out;
}

// Invalid UTF-8 inside strings (GGUF metadata is stored as found) is replaced, not thrown on.
void write_json_file(const std::string& path, const nlohmann::json& j) {
  write_file_atomic(path, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

void write_model_files(const io::ModelSource& src, const std::optional<QuantConfig>& config,
                       const std::string& dir) {
  nlohmann::json cfg = src.config;
  if (config) {
    cfg["quantization_config"] = config->to_json();
    cfg["quantization_config"]["quant_method"] = "lords";
  }
  write_json_file(dir + "/config.json", cfg);
  for (const std::string& f : src.aux_files)
    copy_file_atomic(f, dir + "/" + std::filesystem::path(f).filename().string());
  if (src.kind == io::SourceKind::Gguf) {
    nlohmann::json tok = nlohmann::json::object();
    for (const auto& [key, value] : src.gguf_metadata.items())
      if (key.rfind("tokenizer.", 0) == 0) tok[key] = value;
    write_json_file(dir + "/tokenizer.gguf.json", tok);
  }
}

}  // namespace lords::engine
