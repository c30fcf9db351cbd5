// The Llama-family runtime on seeded random models (llama, qwen2 with biases, mistral; tied and
// untied; head dims 16/64/80; GQA ratios 1/2/3/4): cpu logits equal ref logits; decoding token by
// token (or in chunks) through the KV cache equals the full-sequence forward; a quantized checkpoint
// running on qmatmul equals the dense model rebuilt by dequantize_model; every source loads (HF
// F32/F16, GGUF with llama.cpp's permuted q/k, checkpoint); bad input fails with Error{Usage}.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "common/random_model.h"
#include "common/temp_dir.h"
#include "common/test_quantize.h"
#include "io/gguf_builder.h"
#include "lords/engine/dequantize_model.h"
#include "lords/engine/quantize_model.h"
#include "lords/io/model_source.h"
#include "lords/model/weight_table.h"
#include "lords/runtime/llama_model.h"

namespace fs = std::filesystem;
using namespace lords;
using runtime::Backend;
using runtime::LlamaModel;
using runtime::LogitsMode;

namespace {

// Tolerances on logits, relative to max |logit| of the reference (random models give |logits| ~ 1-10).
// Measured on the models below: cpu vs ref <= 1.3e-6, prefill vs decode <= 1e-6, quantized vs
// dequantized <= 6e-7; each bound leaves ~10x headroom while a wrong weight, head or position moves
// logits by O(1e-1).
// cpu (fp32 BLAS, fp32 online softmax) vs ref (fp64 accumulation) through 2 layers.
constexpr double kBackendTol = 1e-5;
// cpu prefill (sgemm, multi-row attention) vs decode (sgemv): summation order only.
constexpr double kIncrementalTol = 1e-5;
// qmatmul rebuilding W_hat on the fly vs a dense matmul on the dequantized fp32 W_hat: W_hat agrees to
// ~1 ulp, the rest is summation order.
constexpr double kQuantTol = 1e-5;

std::vector<int32_t> tokens_for(int64_t vocab, int64_t T, uint32_t seed = 3) {
  std::vector<int32_t> t(static_cast<size_t>(T));
  uint32_t s = seed;
  for (int32_t& x : t) x = static_cast<int32_t>((s = s * 1664525u + 1013904223u) >> 8) % static_cast<int32_t>(vocab);
  return t;
}

std::vector<float> run_all(LlamaModel& m, const std::vector<int32_t>& tokens) {
  runtime::KvCache cache = m.make_cache(64);
  std::vector<float> logits(tokens.size() * static_cast<size_t>(m.vocab()));
  m.forward(tokens.data(), static_cast<int64_t>(tokens.size()), cache, logits.data(), LogitsMode::All);
  EXPECT_EQ(cache.pos, static_cast<int64_t>(tokens.size()));
  return logits;
}

// max |a - b| / max(1, max |b|)
double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0, scale = 1;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return INFINITY;
    worst = std::max(worst, std::abs(double(a[i]) - b[i]));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return worst / scale;
}

struct Named {
  const char* name;
  test::RandomModelSpec spec;
};
void PrintTo(const Named& n, std::ostream* os) { *os << n.name; }

std::vector<Named> model_zoo() {
  test::RandomModelSpec llama;  // hidden 64, 4 heads / 2 kv: Dh 16, GQA 2
  test::RandomModelSpec llama_tied = llama;
  llama_tied.tie_embeddings = true;
  llama_tied.hidden = 240, llama_tied.heads = 3, llama_tied.kv_heads = 1;  // Dh 80, GQA 3
  test::RandomModelSpec qwen2;
  qwen2.model_type = "qwen2";
  qwen2.hidden = 128, qwen2.heads = 8, qwen2.kv_heads = 2, qwen2.seed = 5;  // Dh 16, GQA 4
  test::RandomModelSpec qwen2_tied = qwen2;
  qwen2_tied.tie_embeddings = true;
  qwen2_tied.hidden = 128, qwen2_tied.heads = 2, qwen2_tied.kv_heads = 2;  // Dh 64, GQA 1
  test::RandomModelSpec mistral_f16;
  mistral_f16.model_type = "mistral";
  mistral_f16.dtype = "F16";
  mistral_f16.seed = 9;
  return {{"llama", llama}, {"llama_tied", llama_tied}, {"qwen2", qwen2}, {"qwen2_tied", qwen2_tied},
          {"mistral_f16", mistral_f16}};
}

std::string write_model(const test::TempDir& tmp, const std::string& name, const test::RandomModelSpec& spec) {
  const std::string dir = tmp.file(name);
  fs::create_directory(dir);
  test::write_random_model(dir, spec);
  return dir;
}

class PerModel : public ::testing::TestWithParam<Named> {};

TEST_P(PerModel, CpuLogitsMatchRef) {
  test::TempDir tmp;
  const std::string dir = write_model(tmp, "m", GetParam().spec);
  LlamaModel cpu = LlamaModel::load(dir, Backend::Cpu), ref = LlamaModel::load(dir, Backend::Ref);
  const auto tokens = tokens_for(cpu.vocab(), 11);
  const auto a = run_all(cpu, tokens), b = run_all(ref, tokens);
  EXPECT_LE(rel_diff(a, b), kBackendTol);
  EXPECT_GT(*std::max_element(b.begin(), b.end()), 0.1f);  // not trivially zero
}

TEST_P(PerModel, IncrementalDecodingEqualsFullForward) {
  test::TempDir tmp;
  const std::string dir = write_model(tmp, "m", GetParam().spec);
  for (Backend backend : {Backend::Ref, Backend::Cpu}) {
    LlamaModel m = LlamaModel::load(dir, backend);
    const int64_t V = m.vocab(), T = 11;
    const auto tokens = tokens_for(V, T);
    const auto full = run_all(m, tokens);
    // One token at a time: each step's Last row equals row t of the full forward.
    runtime::KvCache cache = m.make_cache(T);
    std::vector<float> step(static_cast<size_t>(V));
    for (int64_t t = 0; t < T; ++t) {
      m.forward(&tokens[t], 1, cache, step.data(), LogitsMode::Last);
      const std::vector<float> row(full.begin() + t * V, full.begin() + (t + 1) * V);
      if (backend == Backend::Ref) {
        // Every ref op is row-independent with a fixed summation order: bit for bit.
        ASSERT_EQ(step, row) << "ref step " << t;
      } else {
        ASSERT_LE(rel_diff(step, row), kIncrementalTol) << "cpu step " << t;
      }
    }
    EXPECT_EQ(cache.pos, T);
    // Chunks 4 + 1 + 6 (prefill, one decode step, prefill on top of a cache), Last rows.
    cache.reset();
    int64_t done = 0;
    for (int64_t chunk : {4, 1, 6}) {
      m.forward(&tokens[done], chunk, cache, step.data(), LogitsMode::Last);
      done += chunk;
      const std::vector<float> row(full.begin() + (done - 1) * V, full.begin() + done * V);
      EXPECT_LE(rel_diff(step, row), backend == Backend::Ref ? 0.0 : kIncrementalTol) << "chunk end " << done;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, PerModel, ::testing::ValuesIn(model_zoo()),
                         [](const auto& p) { return std::string(p.param.name); });

// ----------------------------------------------------------------------------------------------
// Quantized checkpoints: qmatmul on the packed codes vs dense matmul on dequantize_model's W_hat.

class Quantized : public ::testing::TestWithParam<std::tuple<engine::Method, int, const char*>> {};

TEST_P(Quantized, CheckpointLogitsEqualDequantizedDenseModel) {
  const auto [method, bits, which] = GetParam();
  test::RandomModelSpec spec;
  if (std::string(which) == "qwen2_tied") {
    spec.model_type = "qwen2";
    spec.tie_embeddings = true;
  }
  test::TempDir tmp;
  const std::string src = write_model(tmp, "src", spec), ck = tmp.file("ck"), plain = tmp.file("plain");
  // block 16 of hidden 64: several blocks per row, parity rank >= 1
  test::quantize_quietly(src, ck, test::test_quant_config(method, bits, 16));
  engine::dequantize_model({ck, plain, DType::F32, false});

  for (Backend backend : {Backend::Cpu, Backend::Ref}) {
    LlamaModel q = LlamaModel::load(ck, backend), dense = LlamaModel::load(plain, backend);
    EXPECT_EQ(q.quantized_linears(), 7 * spec.layers);
    EXPECT_EQ(dense.quantized_linears(), 0);
    const auto tokens = tokens_for(q.vocab(), 9);
    const auto a = run_all(q, tokens), b = run_all(dense, tokens);
    EXPECT_LE(rel_diff(a, b), kQuantTol) << runtime::backend_name(backend);
    // And the quantized model really differs from the unquantized source.
    LlamaModel original = LlamaModel::load(src, backend);
    EXPECT_GT(rel_diff(run_all(original, tokens), b), 1e-3);
  }
}

INSTANTIATE_TEST_SUITE_P(Methods, Quantized,
                         ::testing::Values(std::make_tuple(engine::Method::Lords, 4, "llama"),
                                           std::make_tuple(engine::Method::Lords, 3, "qwen2_tied"),
                                           std::make_tuple(engine::Method::Lords, 2, "llama"),
                                           std::make_tuple(engine::Method::Rtn, 4, "qwen2_tied"),
                                           std::make_tuple(engine::Method::Rtn, 3, "llama")));

// ----------------------------------------------------------------------------------------------
// Sources.

// A llama GGUF of the HF model at dir: F32 tensors under GGUF names, q/k rows permuted per rotary head
// the way llama.cpp's converter does, config as GGUF metadata.
void write_gguf_of(const std::string& dir, const std::string& out) {
  const io::ModelSource src = io::open_model(dir);
  const model::ModelConfig c = model::parse_model_config(src.config, src.config_path);
  test::GgufBuilder b;
  b.kv_str("general.architecture", "llama")
      .kv_u32("llama.embedding_length", static_cast<uint32_t>(c.hidden))
      .kv_u32("llama.feed_forward_length", static_cast<uint32_t>(c.intermediate))
      .kv_u32("llama.block_count", static_cast<uint32_t>(c.n_layer))
      .kv_u32("llama.attention.head_count", static_cast<uint32_t>(c.n_head))
      .kv_u32("llama.attention.head_count_kv", static_cast<uint32_t>(c.n_head_kv))
      .kv_f32("llama.attention.layer_norm_rms_epsilon", static_cast<float>(c.rms_eps))
      .kv_f32("llama.rope.freq_base", static_cast<float>(c.rope_theta))
      .kv_u32("llama.context_length", static_cast<uint32_t>(c.max_pos))
      .kv_u32("llama.vocab_size", static_cast<uint32_t>(c.vocab));
  for (const model::ResolvedWeight& w : model::resolve_weights(src, c)) {
    HostTensor t = model::load_weight(src, w);
    if (w.spec.rope_heads > 0) {  // GGUF row h*Dh + 2i + j holds HF row h*Dh + j*Dh/2 + i
      const int64_t cols = t.cols(), d = t.rows() / w.spec.rope_heads, half = d / 2;
      std::vector<float> p(t.data.size());
      for (int64_t h = 0; h < w.spec.rope_heads; ++h)
        for (int64_t i = 0; i < half; ++i)
          for (int64_t j = 0; j < 2; ++j)
            std::copy_n(&t.data[static_cast<size_t>((h * d + j * half + i) * cols)], cols,
                        &p[static_cast<size_t>((h * d + 2 * i + j) * cols)]);
      t.data = p;
    }
    std::vector<uint64_t> ne(t.shape.rbegin(), t.shape.rend());
    b.tensor({w.spec.gguf, ne, test::kF32, test::f32_bytes(t.data), std::nullopt});
  }
  std::ofstream(out, std::ios::binary) << b.build();
}

TEST(LlamaModelLoad, GgufEqualsHfDirectory) {
  test::TempDir tmp;
  for (bool tied : {false, true}) {
    test::RandomModelSpec spec;
    spec.tie_embeddings = tied;
    const std::string dir = write_model(tmp, tied ? "tied" : "untied", spec), gguf = dir + ".gguf";
    write_gguf_of(dir, gguf);
    LlamaModel a = LlamaModel::load(gguf, Backend::Cpu), b = LlamaModel::load(dir, Backend::Cpu);
    EXPECT_EQ(a.config().tie_embeddings, tied);
    const auto tokens = tokens_for(a.vocab(), 7);
    EXPECT_EQ(run_all(a, tokens), run_all(b, tokens)) << "tied=" << tied;  // same fp32 weights
  }
}

TEST(LlamaModelLoad, BadSourcesFail) {
  test::TempDir tmp;
  test::expect_error([&] { LlamaModel::load(tmp.file("nothing"), Backend::Cpu); }, {"nothing"});
  test::RandomModelSpec bert;
  bert.model_type = "bert";
  const std::string dir = write_model(tmp, "bert", bert);
  EXPECT_EQ(test::expect_error([&] { LlamaModel::load(dir, Backend::Cpu); }, {"bert", "quantization only"}),
            ErrorKind::Unsupported);
  // rope_scaling types other than default / linear / llama3 are refused, not silently ignored.
  const std::string llama = write_model(tmp, "llama", {});
  nlohmann::json config = nlohmann::json::parse(std::ifstream(llama + "/config.json"));
  config["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  std::ofstream(llama + "/config.json") << config.dump();
  EXPECT_EQ(test::expect_error([&] { LlamaModel::load(llama, Backend::Cpu); }, {"yarn"}), ErrorKind::Unsupported);
}

TEST(LlamaModelLoad, RopeScalingFromConfigChangesLogitsOnBothBackendsAlike) {
  test::TempDir tmp;
  const std::string dir = write_model(tmp, "m", {});
  LlamaModel plain = LlamaModel::load(dir, Backend::Cpu);
  nlohmann::json config = nlohmann::json::parse(std::ifstream(dir + "/config.json"));
  config["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                            {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 16}};
  std::ofstream(dir + "/config.json") << config.dump();
  LlamaModel cpu = LlamaModel::load(dir, Backend::Cpu), ref = LlamaModel::load(dir, Backend::Ref);
  const auto tokens = tokens_for(cpu.vocab(), 9);
  const auto a = run_all(cpu, tokens);
  EXPECT_LE(rel_diff(a, run_all(ref, tokens)), kBackendTol);
  EXPECT_GT(rel_diff(a, run_all(plain, tokens)), 1e-4);
}

// ----------------------------------------------------------------------------------------------
// Errors: all Error{Usage}, the cache untouched.

TEST(LlamaModelForward, ContextOverflowAndBadTokensFail) {
  test::TempDir tmp;
  const std::string dir = write_model(tmp, "m", {});  // max_position_embeddings 256, vocab 96
  LlamaModel m = LlamaModel::load(dir, Backend::Cpu);
  std::vector<float> logits(static_cast<size_t>(16 * m.vocab()));
  const auto tokens = tokens_for(m.vocab(), 16);
  auto usage = [](const std::function<void()>& fn, const std::vector<std::string>& phrases) {
    EXPECT_EQ(test::expect_error(fn, phrases), ErrorKind::Usage);
  };
  usage([&] { m.make_cache(257); }, {"context of 257 tokens exceeds the model's maximum of 256"});
  runtime::KvCache full = m.make_cache();
  EXPECT_EQ(full.capacity(), 256);
  full.pos = 250;
  usage([&] { m.forward(tokens.data(), 10, full, logits.data(), LogitsMode::Last); },
        {"context of 260 tokens exceeds the model's maximum of 256"});
  EXPECT_EQ(full.pos, 250);
  runtime::KvCache small = m.make_cache(8);
  m.forward(tokens.data(), 5, small, logits.data(), LogitsMode::All);
  usage([&] { m.forward(tokens.data(), 4, small, logits.data(), LogitsMode::All); },
        {"context of 9 tokens", "capacity of 8"});
  EXPECT_EQ(small.pos, 5);
  std::vector<int32_t> bad = {1, 2, -1};
  usage([&] { m.forward(bad.data(), 3, small, logits.data(), LogitsMode::All); }, {"token id -1", "[0, 96)"});
  bad[2] = 96;
  usage([&] { m.forward(bad.data(), 3, small, logits.data(), LogitsMode::All); }, {"token id 96"});
  usage([&] { m.forward(tokens.data(), 0, small, logits.data(), LogitsMode::All); }, {"at least one token"});
  EXPECT_EQ(small.pos, 5);
  runtime::KvCache other(3, 8, 2, 16);  // 3 layers: another model's cache
  usage([&] { m.forward(tokens.data(), 1, other, logits.data(), LogitsMode::All); }, {"KV cache"});
  // The cache still works after the refusals.
  m.forward(tokens.data(), 3, small, logits.data(), LogitsMode::Last);
  EXPECT_EQ(small.pos, 8);
}

TEST(LlamaModelForward, MistralSlidingWindowIsRefusedBeyondTheWindow) {
  test::TempDir tmp;
  test::RandomModelSpec spec;
  spec.model_type = "mistral";
  const std::string dir = write_model(tmp, "m", spec);
  nlohmann::json config = nlohmann::json::parse(std::ifstream(dir + "/config.json"));
  config["sliding_window"] = 6;
  std::ofstream(dir + "/config.json") << config.dump();
  LlamaModel m = LlamaModel::load(dir, Backend::Cpu);
  runtime::KvCache cache = m.make_cache(16);
  std::vector<float> logits(static_cast<size_t>(m.vocab()));
  const auto tokens = tokens_for(m.vocab(), 7);
  m.forward(tokens.data(), 6, cache, logits.data(), LogitsMode::Last);  // within the window: exact
  EXPECT_EQ(test::expect_error([&] { m.forward(&tokens[6], 1, cache, logits.data(), LogitsMode::Last); },
                               {"sliding window of 6"}),
            ErrorKind::Unsupported);
}

}  // namespace
