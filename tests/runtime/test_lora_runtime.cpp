// LoRA branches in the runtime (a QLoRA fine-tune: base checkpoint + adapters.safetensors): the
// model with adapters computes the logits of the dense model whose weights are the dequantized base
// plus the merged update (alpha / r) B A, on the cpu and ref backends, biased (qwen2 q/k/v) and
// tied heads included; adapters that do not fit the model fail to load with one Error.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "common/random_model.h"
#include "common/temp_dir.h"
#include "common/test_quantize.h"
#include "common/tiny_checkpoint.h"
#include "lords/core/error.h"
#include "lords/engine/dequantize_model.h"
#include "lords/engine/quantize_model.h"
#include "lords/io/safetensors.h"
#include "lords/runtime/llama_model.h"

namespace fs = std::filesystem;
using namespace lords;
using runtime::Backend;
using runtime::LlamaModel;

namespace {

// The branch on qmatmul vs the same update merged into a dense fp32 W: summation order only
// (logits ~1-10; measured ~1e-6 relative).
constexpr double kMergedTol = 1e-5;

struct Adapter {
  int64_t N = 0, K = 0;
  std::vector<float> A, B;  // (r, K), (N, r)
};

constexpr int64_t kRank = 3;
constexpr float kAlpha = 6.0f;

// Writes dir/adapters.safetensors for `adapters` (name -> A, B) with our metadata.
void write_adapters(const std::string& dir, const std::map<std::string, Adapter>& adapters) {
  io::SafetensorsWriter w(dir + "/adapters.safetensors");
  w.set_metadata({{"format", "lords-lora"},
                  {"lora.rank", std::to_string(kRank)},
                  {"lora.alpha", std::to_string(kAlpha)}});
  for (const auto& [name, a] : adapters) {
    w.declare(name + ".lora_A", DType::F32, {kRank, a.K});
    w.declare(name + ".lora_B", DType::F32, {a.N, kRank});
  }
  w.begin();
  for (const auto& [name, a] : adapters) {
    w.write(name + ".lora_A", a.A.data(), a.A.size() * sizeof(float));
    w.write(name + ".lora_B", a.B.data(), a.B.size() * sizeof(float));
  }
  w.commit();
}

Adapter random_adapter(int64_t N, int64_t K, uint32_t seed) {
  Adapter a{N,
            K,
            test::uniform_floats(static_cast<size_t>(kRank * K), seed),
            test::uniform_floats(static_cast<size_t>(N * kRank), seed + 1)};
  for (float& x : a.A) x *= 0.3f;
  for (float& x : a.B) x *= 0.3f;
  return a;
}

// Rewrites the plain model at dir with W += (alpha / r) B A for every adapter; an adapter on the
// tied head unties it (lm_head.weight = embedding + update).
void merge_into_dense(const std::string& dir, const std::map<std::string, Adapter>& adapters) {
  io::TensorIndex index;
  io::read_safetensors(dir + "/model.safetensors", &index);
  std::map<std::string, HostTensor> tensors;
  for (const std::string& n : index.names()) tensors.emplace(n, index.load_f32(n));
  if (adapters.count("lm_head.weight") && !tensors.count("lm_head.weight")) {
    tensors.emplace("lm_head.weight", tensors.at("model.embed_tokens.weight"));
    nlohmann::json config = nlohmann::json::parse(std::ifstream(dir + "/config.json"));
    config["tie_word_embeddings"] = false;
    std::ofstream(dir + "/config.json") << config.dump(2);
  }
  const float s = kAlpha / static_cast<float>(kRank);
  for (const auto& [name, a] : adapters) {
    HostTensor& W = tensors.at(name);
    for (int64_t n = 0; n < a.N; ++n)
      for (int64_t k = 0; k < a.K; ++k) {
        double d = 0;
        for (int64_t j = 0; j < kRank; ++j)
          d += static_cast<double>(a.B[static_cast<size_t>(n * kRank + j)]) *
               a.A[static_cast<size_t>(j * a.K + k)];
        W.data[static_cast<size_t>(n * a.K + k)] += static_cast<float>(s * d);
      }
  }
  fs::remove(dir + "/model.safetensors");
  io::SafetensorsWriter w(dir + "/model.safetensors");
  for (const auto& [name, t] : tensors) w.declare(name, DType::F32, t.shape);
  w.begin();
  for (const auto& [name, t] : tensors) w.write(name, t.data.data(), t.data.size() * sizeof(float));
  w.commit();
}

std::vector<float> logits_of(LlamaModel& m, int64_t T) {
  std::vector<int32_t> tokens(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t)
    tokens[static_cast<size_t>(t)] = static_cast<int32_t>((t * 37 + 5) % m.vocab());
  runtime::KvCache cache = m.make_cache(T);
  std::vector<float> logits(static_cast<size_t>(T * m.vocab()));
  m.forward(tokens.data(), T, cache, logits.data(), runtime::LogitsMode::All);
  return logits;
}

double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0, scale = 1;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  }
  return worst / scale;
}

// A random model quantized block-wise NF4 (the QLoRA base) under tmp/ck, its dequantized copy
// under tmp/plain.
void make_base(const test::TempDir& tmp, const test::RandomModelSpec& spec) {
  fs::create_directory(tmp.file("src"));
  test::write_random_model(tmp.file("src"), spec);
  test::quantize_quietly(tmp.file("src"), tmp.file("ck"), test::test_quant_config(engine::Method::Rtn, 4, 16));
  engine::dequantize_model({tmp.file("ck"), tmp.file("plain"), DType::F32, false});
}

class LoraRuntime : public ::testing::TestWithParam<const char*> {};

TEST_P(LoraRuntime, AdaptersEqualTheMergedDenseModel) {
  const bool qwen2_tied = std::string(GetParam()) == "qwen2_tied";
  test::RandomModelSpec spec;  // hidden 64, intermediate 160, vocab 96
  if (qwen2_tied) spec.model_type = "qwen2", spec.tie_embeddings = true, spec.seed = 4;
  test::TempDir tmp;
  make_base(tmp, spec);
  std::map<std::string, Adapter> adapters;
  adapters["model.layers.0.self_attn.q_proj.weight"] =
      random_adapter(64, 64, 1);  // biased in qwen2
  adapters["model.layers.1.mlp.down_proj.weight"] = random_adapter(64, 160, 3);
  adapters["model.layers.1.self_attn.v_proj.weight"] = random_adapter(32, 64, 5);
  if (qwen2_tied) adapters["lm_head.weight"] = random_adapter(96, 64, 7);  // dense, tied
  write_adapters(tmp.file("ck"), adapters);
  merge_into_dense(tmp.file("plain"), adapters);
  for (Backend backend : {Backend::Cpu, Backend::Ref}) {
    LlamaModel tuned = LlamaModel::load(tmp.file("ck"), backend);
    LlamaModel merged = LlamaModel::load(tmp.file("plain"), backend);
    EXPECT_EQ(tuned.lora_linears(), static_cast<int64_t>(adapters.size()));
    EXPECT_EQ(tuned.quantized_linears(), 14);
    const std::vector<float> a = logits_of(tuned, 11), b = logits_of(merged, 11);
    EXPECT_LE(rel_diff(a, b), kMergedTol) << runtime::backend_name(backend);
    // The adapters matter: without them the logits are the base's.
    fs::rename(tmp.file("ck/adapters.safetensors"), tmp.file("adapters.off"));
    LlamaModel base = LlamaModel::load(tmp.file("ck"), backend);
    fs::rename(tmp.file("adapters.off"), tmp.file("ck/adapters.safetensors"));
    EXPECT_EQ(base.lora_linears(), 0);
    EXPECT_GT(rel_diff(logits_of(base, 11), b), 1e-2);
  }
}

INSTANTIATE_TEST_SUITE_P(Models,
                         LoraRuntime,
                         ::testing::Values("llama", "qwen2_tied"),
                         [](const auto& p) { return std::string(p.param); });

TEST(LoraRuntimeErrors, AdaptersThatDoNotFitFailToLoad) {
  test::TempDir tmp;
  make_base(tmp, {});
  const std::string ck = tmp.file("ck");
  const auto fails =
      [&](const std::map<std::string, Adapter>& adapters, ErrorKind kind, const char* phrase) {
        write_adapters(ck, adapters);
        try {
          LlamaModel::load(ck, Backend::Cpu);
          ADD_FAILURE() << "loaded " << phrase;
        } catch (const Error& e) {
          EXPECT_EQ(e.kind(), kind) << e.what();
          EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
        }
        fs::remove(ck + "/adapters.safetensors");
      };
  fails({{"model.layers.7.mlp.up_proj.weight", random_adapter(160, 64, 1)}},
        ErrorKind::Format,
        "matches no linear");
  fails({{"model.layers.0.mlp.up_proj.weight", random_adapter(160, 32, 1)}},
        ErrorKind::BadShape,
        "has shape");
  // Peft-style metadata names are read too; a missing rank is not.
  test::TinyAdapter peft{"model.layers.0.mlp.up_proj.weight",
                         test::uniform_floats(kRank * 64, 2),
                         test::uniform_floats(160 * kRank, 3),
                         160,
                         64,
                         kRank,
                         4.0,
                         test::AdapterKeys::Peft};
  test::write_lora_adapters(ck, peft);
  EXPECT_EQ(LlamaModel::load(ck, Backend::Cpu).lora_linears(), 1);
  io::SafetensorsWriter w(ck + "/adapters.safetensors");
  w.set_metadata({{"lora.alpha", "2"}});
  w.begin();
  w.commit();
  EXPECT_THROW(LlamaModel::load(ck, Backend::Cpu), Error);
}

}  // namespace
