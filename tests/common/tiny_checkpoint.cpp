#include "common/tiny_checkpoint.h"

#include <fmt/format.h>

#include <fstream>
#include <random>

#include "common/random_model.h"
#include "lords/engine/checkpoint.h"
#include "lords/engine/write_support.h"
#include "lords/io/safetensors.h"
#include "lords/quant/codebook.h"

namespace lords::test {

TinyLayer tiny_lords_layer(const std::string& name,
                           int64_t N,
                           int64_t K,
                           std::vector<uint8_t> codes,
                           std::vector<float> B,
                           std::vector<float> A,
                           int64_t r) {
  TinyLayer l;
  l.name = name;
  l.q.method = engine::Method::Lords;
  l.q.N = N;
  l.q.K = K;
  l.q.lords_codes = std::move(codes);
  l.q.lowrank = {N, K, r, std::move(B), std::move(A)};
  return l;
}

TinyLayer tiny_rtn_layer(const std::string& name,
                         int64_t N,
                         int64_t K,
                         int64_t G,
                         std::vector<uint8_t> codes,
                         std::vector<float> scales) {
  TinyLayer l;
  l.name = name;
  l.q.method = engine::Method::Rtn;
  l.q.N = N;
  l.q.K = K;
  l.q.rtn = {N, K, G, std::move(scales), std::move(codes)};
  return l;
}

void write_tiny_checkpoint(const std::string& dir, const std::vector<TinyLayer>& layers) {
  engine::QuantConfig config;
  config.method = layers.at(0).q.method;
  config.scale_dtype = DType::F32;
  if (config.method == engine::Method::Rtn) config.block = layers[0].q.rtn.G;
  const quant::Codebook cb = quant::make_codebook(quant::CodebookKind::NF, config.bits);
  nlohmann::json table = nlohmann::json::object();
  for (const TinyLayer& l : layers) {
    table[l.name] = {{"shape", {l.q.N, l.q.K}}};
    if (l.q.method == engine::Method::Rtn)
      table[l.name]["block"] = l.q.rtn.G;
    else
      table[l.name]["rank"] = l.q.lowrank.r;
  }
  io::SafetensorsWriter w(dir + "/" + engine::kWeightsFile);
  w.set_metadata(engine::checkpoint_metadata(config, cb, table, "tiny"));
  for (const TinyLayer& l : layers)
    for (const engine::StoredTensor& t :
         engine::quantized_tensors(l.name, l.q, config.bits, DType::F32))
      w.declare(t.name, t.dtype, t.shape);
  w.begin();
  for (const TinyLayer& l : layers) {
    const auto tensors = engine::quantized_tensors(l.name, l.q, config.bits, DType::F32);
    const auto bytes = engine::quantized_bytes(l.q, config.bits, DType::F32);
    for (size_t i = 0; i < tensors.size(); ++i)
      w.write(tensors[i].name, bytes[i].data(), bytes[i].size());
  }
  w.commit();
  std::ofstream(dir + "/config.json") << random_model_config({}).dump(2);
}

void write_lora_adapters(const std::string& dir, const TinyAdapter& a) {
  io::SafetensorsWriter w(dir + "/adapters.safetensors");
  if (a.keys == AdapterKeys::Lords) {
    w.set_metadata({{"format", "lords-lora"},
                    {"format_version", "1"},
                    {"lora.rank", std::to_string(a.r)},
                    {"lora.alpha", fmt::format("{}", a.alpha)}});
  } else {
    w.set_metadata(
        {{"lora_alpha", fmt::format("{}", a.alpha)}, {"lora_rank", std::to_string(a.r)}});
  }
  w.declare(a.name + ".lora_A", DType::F32, {a.r, a.K});
  w.declare(a.name + ".lora_B", DType::F32, {a.N, a.r});
  w.begin();
  w.write(a.name + ".lora_A", a.A.data(), a.A.size() * sizeof(float));
  w.write(a.name + ".lora_B", a.B.data(), a.B.size() * sizeof(float));
  w.commit();
}

std::vector<float> uniform_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> v(n);
  // 24 random bits -> exactly representable floats in [-1, 1).
  for (float& x : v)
    x = static_cast<float>(static_cast<int32_t>(rng() >> 8) - (1 << 23)) / float(1 << 23);
  return v;
}

}  // namespace lords::test
