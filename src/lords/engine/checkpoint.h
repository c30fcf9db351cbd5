// The LoRDS checkpoint (docs/FORMAT.md): a directory with config.json, the tokenizer files and one
// model.safetensors holding, for each quantized linear "<hf name>" (N, K):
//   <name>.qcodes   U8  (N, packed_row_bytes(K, bits))   bit-packed codes (quant/pack.h layout)
//   <name>.lords_B  F16 (N, r)   and  <name>.lords_A F16 (r, K)        method lords
//   <name>.qscales  F16 (N, ceil(K/G))                                  method rtn (block absmax)
// and every other tensor under its HF name, unchanged. __metadata__ records the format, every
// setting, the codebook levels and a per-layer table; readers cross-check it against the tensors.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lords/engine/linear_quant.h"
#include "lords/engine/quant_config.h"
#include "lords/io/tensor_index.h"
#include "lords/quant/codebook.h"

namespace lords::engine {

inline constexpr const char* kFormatName = "lords-checkpoint";
inline constexpr const char* kFormatVersion = "1";
inline constexpr const char* kWeightsFile = "model.safetensors";

struct StoredTensor {  // one tensor a quantized linear stores
  std::string name;
  DType dtype;
  Shape shape;
};
// The tensors that hold quantized linear `name`, in file order.
std::vector<StoredTensor> quantized_tensors(const std::string& name, const QuantizedLinear& shape_only,
                                            int bits, DType scale_dtype);
// Bytes of each stored tensor of q (codes packed, scales converted to scale_dtype), same order.
std::vector<std::vector<uint8_t>> quantized_bytes(const QuantizedLinear& q, int bits, DType scale_dtype);

// A checkpoint opened for reading; every inconsistency between metadata and tensors is an Error
// naming the file.
class Checkpoint {
 public:
  explicit Checkpoint(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const std::string& weights_path() const { return weights_path_; }
  const nlohmann::json& config() const { return config_; }         // config.json
  const nlohmann::json& settings() const { return settings_; }     // QuantConfig::to_json()
  const nlohmann::json& layer_table() const { return layers_; }    // name -> {shape, rank|block}
  const quant::Codebook& codebook() const { return codebook_; }
  Method method() const { return method_; }
  int bits() const { return codebook_.bits; }
  const io::TensorIndex& index() const { return index_; }
  const std::vector<std::string>& quantized_names() const { return quantized_; }
  // Tensors that are stored as they are (not part of a quantized linear).
  std::vector<std::string> plain_names() const;
  bool is_quantized(const std::string& name) const { return layers_.contains(name); }

  QuantizedLinear load_linear(const std::string& name) const;

 private:
  std::string dir_, weights_path_;
  nlohmann::json config_, settings_, layers_;
  quant::Codebook codebook_;
  Method method_ = Method::Lords;
  io::TensorIndex index_;
  std::vector<std::string> quantized_;
};

}  // namespace lords::engine
