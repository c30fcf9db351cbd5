#include "lords/engine/checkpoint.h"

#include <filesystem>
#include <fstream>
#include <set>

#include "lords/core/error.h"
#include "lords/engine/write_support.h"
#include "lords/io/safetensors.h"
#include "lords/quant/pack.h"

namespace lords::engine {
namespace {

std::vector<float> load_floats(const io::TensorIndex& index, const std::string& name) {
  return index.load_f32(name).data;
}

nlohmann::json parse_json_meta(const std::map<std::string, std::string>& meta, const std::string& key,
                               const std::string& path) {
  auto it = meta.find(key);
  LORDS_CHECK(it != meta.end(), ErrorKind::Format, "{}: metadata key '{}' missing", path, key);
  try {
    return nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception&) {
    LORDS_FAIL(ErrorKind::Format, "{}: metadata key '{}' is not valid JSON", path, key);
  }
}

}  // namespace

std::vector<StoredTensor> quantized_tensors(const std::string& name, const QuantizedLinear& q, int bits,
                                            DType scale_dtype) {
  std::vector<StoredTensor> t;
  t.push_back({name + ".qcodes", DType::U8, {q.N, quant::packed_row_bytes(q.K, bits)}});
  if (q.method == Method::Rtn) {
    t.push_back({name + ".qscales", scale_dtype, {q.N, quant::num_blocks(q.K, q.rtn.G)}});
  } else {
    t.push_back({name + ".lords_B", scale_dtype, {q.N, q.lowrank.r}});
    t.push_back({name + ".lords_A", scale_dtype, {q.lowrank.r, q.K}});
  }
  return t;
}

std::vector<std::vector<uint8_t>> quantized_bytes(const QuantizedLinear& q, int bits, DType scale_dtype) {
  std::vector<std::vector<uint8_t>> out;
  out.push_back(quant::pack_codes(q.codes().data(), q.N, q.K, bits));
  if (q.method == Method::Rtn) {
    out.push_back(encode_floats(q.rtn.scales, scale_dtype));
  } else {
    out.push_back(encode_floats(q.lowrank.B, scale_dtype));
    out.push_back(encode_floats(q.lowrank.A, scale_dtype));
  }
  return out;
}

Checkpoint::Checkpoint(const std::string& dir) : dir_(dir) {
  namespace fs = std::filesystem;
  LORDS_CHECK(fs::is_directory(dir), ErrorKind::Io, "{}: not a checkpoint directory", dir);
  const std::string config_path = dir + "/config.json";
  std::ifstream in(config_path);
  LORDS_CHECK(in.good(), ErrorKind::Io, "{}: cannot open", config_path);
  try {
    config_ = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception&) {
    LORDS_FAIL(ErrorKind::Format, "{}: invalid JSON", config_path);
  }
  weights_path_ = dir + "/" + kWeightsFile;
  const auto meta = io::read_safetensors(weights_path_, &index_);
  const std::string& p = weights_path_;
  auto fmt_it = meta.find("format");
  LORDS_CHECK(fmt_it != meta.end() && fmt_it->second == kFormatName, ErrorKind::Format,
              "{}: not a lords checkpoint (metadata 'format' is not '{}')", p, kFormatName);
  auto ver = meta.find("format_version");
  LORDS_CHECK(ver != meta.end() && ver->second == kFormatVersion, ErrorKind::Unsupported,
              "{}: unsupported format_version '{}' (this build reads {})", p,
              ver == meta.end() ? "" : ver->second, kFormatVersion);
  settings_ = parse_json_meta(meta, "lords.settings", p);
  layers_ = parse_json_meta(meta, "lords.layers", p);
  const nlohmann::json levels = parse_json_meta(meta, "lords.levels", p);
  LORDS_CHECK(settings_.is_object() && layers_.is_object() && levels.is_array(), ErrorKind::Format,
              "{}: metadata has the wrong JSON types", p);
  try {
    method_ = method_from_name(settings_.at("method").get<std::string>());
    const int bits = settings_.at("bits").get<int>();
    codebook_ = quant::codebook_from_levels(quant::codebook_kind_from_name(settings_.at("codebook")), bits,
                                            levels.get<std::vector<float>>());
  } catch (const nlohmann::json::exception& e) {
    LORDS_FAIL(ErrorKind::Format, "{}: metadata 'lords.settings' is incomplete: {}", p, e.what());
  } catch (const Error& e) {
    LORDS_FAIL(ErrorKind::Format, "{}: metadata: {}", p, e.what());
  }
  // Cross-check the layer table against the tensors (a lying metadata block must not reach a kernel).
  for (const auto& [name, info] : layers_.items()) {
    QuantizedLinear shape_only;
    shape_only.method = method_;
    try {
      shape_only.N = info.at("shape").at(0).get<int64_t>();
      shape_only.K = info.at("shape").at(1).get<int64_t>();
      if (method_ == Method::Rtn) shape_only.rtn.G = info.at("block").get<int64_t>();
      else shape_only.lowrank.r = info.at("rank").get<int64_t>();
    } catch (const nlohmann::json::exception&) {
      LORDS_FAIL(ErrorKind::Format, "{}: metadata layer '{}' lacks shape/rank/block", p, name);
    }
    LORDS_CHECK(shape_only.N > 0 && shape_only.K > 0 && (method_ != Method::Rtn || shape_only.rtn.G > 0) &&
                    (method_ != Method::Lords || shape_only.lowrank.r > 0),
                ErrorKind::Format, "{}: metadata layer '{}' has non-positive sizes", p, name);
    for (const StoredTensor& t : quantized_tensors(name, shape_only, bits(), DType::F16)) {
      LORDS_CHECK(index_.contains(t.name), ErrorKind::Format, "{}: metadata lists '{}' but tensor '{}' is missing",
                  p, name, t.name);
      const io::TensorInfo& ti = index_.at(t.name);
      LORDS_CHECK(ti.shape == t.shape, ErrorKind::Format,
                  "{}: tensor '{}' has shape {}, metadata implies {}", p, t.name, shape_str(ti.shape),
                  shape_str(t.shape));
      LORDS_CHECK(t.dtype != DType::U8 || ti.dtype == "U8", ErrorKind::Format, "{}: tensor '{}' must be U8, is {}",
                  p, t.name, ti.dtype);
    }
    quantized_.push_back(name);
  }
}

std::vector<std::string> Checkpoint::plain_names() const {
  std::set<std::string> owned;
  for (const std::string& name : quantized_)
    for (const char* suffix : {".qcodes", ".qscales", ".lords_B", ".lords_A"}) owned.insert(name + suffix);
  std::vector<std::string> out;
  for (const auto& [name, info] : index_.all())
    if (!owned.count(name)) out.push_back(name);
  return out;
}

QuantizedLinear Checkpoint::load_linear(const std::string& name) const {
  LORDS_CHECK(layers_.contains(name), ErrorKind::Usage, "{}: '{}' is not a quantized layer", weights_path_, name);
  const nlohmann::json& info = layers_.at(name);
  QuantizedLinear q;
  q.method = method_;
  q.N = info.at("shape").at(0).get<int64_t>();
  q.K = info.at("shape").at(1).get<int64_t>();
  std::vector<uint8_t> codes(static_cast<size_t>(q.N * q.K));
  quant::unpack_codes(index_.raw(name + ".qcodes"), q.N, q.K, bits(), codes.data());
  if (method_ == Method::Rtn) {
    q.rtn.N = q.N;
    q.rtn.K = q.K;
    q.rtn.G = info.at("block").get<int64_t>();
    q.rtn.scales = load_floats(index_, name + ".qscales");
    q.rtn.codes = std::move(codes);
  } else {
    q.lowrank.N = q.N;
    q.lowrank.K = q.K;
    q.lowrank.r = info.at("rank").get<int64_t>();
    q.lowrank.B = load_floats(index_, name + ".lords_B");
    q.lowrank.A = load_floats(index_, name + ".lords_A");
    q.lords_codes = std::move(codes);
  }
  return q;
}

}  // namespace lords::engine
