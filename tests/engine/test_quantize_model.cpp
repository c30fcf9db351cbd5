// Whole-model PTQ on seeded random Llama models: checkpoint round trips bit for bit, metadata is
// cross-checked, bad input fails cleanly and leaves nothing behind.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/random_model.h"
#include "common/temp_dir.h"
#include "lords/core/error.h"
#include "lords/engine/checkpoint.h"
#include "lords/engine/dequantize_model.h"
#include "lords/engine/quantize_model.h"
#include "lords/io/model_source.h"
#include "lords/io/safetensors.h"
#include "lords/model/weight_table.h"

namespace fs = std::filesystem;
using namespace lords;

namespace {

engine::QuantConfig small_config(engine::Method method, int bits) {
  engine::QuantConfig c;
  c.method = method;
  c.bits = bits;
  c.block = 16;  // hidden 64: 4 blocks per row, parity rank >= 1
  c.steps = 5;
  c.threads = 2;
  return c;
}

engine::ModelQuantReport run(const std::string& src, const engine::QuantConfig& c,
                             std::optional<std::string> out = std::nullopt) {
  engine::QuantizeRequest req;
  req.source = src;
  req.config = c;
  req.output = std::move(out);
  req.progress = false;
  return engine::quantize_model(req);
}

// W_hat of every quantized layer recomputed in memory from the source model.
std::map<std::string, std::vector<float>> in_memory_what(const std::string& src, const engine::QuantConfig& c) {
  io::ModelSource s = io::open_model(src);
  const model::ModelConfig mc = model::parse_model_config(s.config, s.config_path);
  const quant::Codebook cb = quant::make_codebook(c.codebook, c.bits);
  std::map<std::string, std::vector<float>> out;
  for (const auto& w : model::resolve_weights(s, mc)) {
    if (w.spec.role != model::WeightRole::Linear || w.spec.internal == "output.weight") continue;
    const HostTensor W = model::load_weight(s, w);
    engine::LinearStats st;
    const engine::QuantizedLinear q = engine::quantize_linear(W.data.data(), W.shape[0], W.shape[1], c, cb, &st);
    std::vector<float> w_hat(W.data.size());
    engine::dequantize_linear(q, cb, w_hat.data());
    out[w.spec.hf] = std::move(w_hat);
  }
  return out;
}

class RoundTrip : public ::testing::TestWithParam<std::tuple<engine::Method, int>> {};

TEST_P(RoundTrip, DequantizedFileMatchesInMemoryBitForBit) {
  const auto [method, bits] = GetParam();
  test::TempDir tmp;
  const std::string src = tmp.file("src"), ck = tmp.file("ck"), plain = tmp.file("plain");
  fs::create_directory(src);
  test::write_random_model(src, {});
  const engine::QuantConfig c = small_config(method, bits);
  const engine::ModelQuantReport report = run(src, c, ck);
  ASSERT_EQ(report.layers.size(), 14u);  // 2 layers x 7 linears
  EXPECT_GT(report.total_rel_err(), 0.0);
  EXPECT_LT(report.total_rel_err(), bits == 4 ? 0.2 : bits == 3 ? 0.35 : 0.7);

  const auto expected = in_memory_what(src, c);
  const engine::Checkpoint checkpoint(ck);
  ASSERT_EQ(checkpoint.quantized_names().size(), expected.size());
  for (const auto& name : checkpoint.quantized_names()) {
    const engine::QuantizedLinear q = checkpoint.load_linear(name);
    std::vector<float> w_hat(static_cast<size_t>(q.N * q.K));
    engine::dequantize_linear(q, checkpoint.codebook(), w_hat.data());
    ASSERT_EQ(0, std::memcmp(w_hat.data(), expected.at(name).data(), w_hat.size() * 4)) << name;
  }
  engine::dequantize_model({ck, plain, DType::F32, false});
  io::TensorIndex index;
  io::read_safetensors(plain + "/model.safetensors", &index);
  io::TensorIndex source_index;
  io::read_safetensors(src + "/model.safetensors", &source_index);
  EXPECT_EQ(index.names(), source_index.names());  // same tensor set, HF names
  for (const auto& [name, w_hat] : expected) {
    const HostTensor t = index.load_f32(name);
    ASSERT_EQ(0, std::memcmp(t.data.data(), w_hat.data(), w_hat.size() * 4)) << name;
  }
  // Plain tensors are copied through unchanged.
  const HostTensor a = index.load_f32("model.embed_tokens.weight"), b = source_index.load_f32("model.embed_tokens.weight");
  EXPECT_EQ(a.data, b.data);
  EXPECT_TRUE(fs::exists(plain + "/config.json"));
}

INSTANTIATE_TEST_SUITE_P(Methods, RoundTrip,
                         ::testing::Values(std::make_tuple(engine::Method::Lords, 4),
                                           std::make_tuple(engine::Method::Lords, 3),
                                           std::make_tuple(engine::Method::Lords, 2),
                                           std::make_tuple(engine::Method::Rtn, 4),
                                           std::make_tuple(engine::Method::Rtn, 2)));

TEST(QuantizeModel, LordsAlsBeatsRtnAtEqualBudgetOnLowBits) {
  test::TempDir tmp;
  fs::create_directory(tmp.file("src"));
  test::RandomModelSpec spec;
  spec.hidden = 128;
  spec.intermediate = 256;
  test::write_random_model(tmp.file("src"), spec);
  for (int bits : {2, 3}) {
    engine::QuantConfig c = small_config(engine::Method::Lords, bits);
    c.steps = 20;
    const double lords_err = run(tmp.file("src"), c).total_rel_err();
    const double rtn_err = run(tmp.file("src"), small_config(engine::Method::Rtn, bits)).total_rel_err();
    EXPECT_LT(lords_err, rtn_err) << bits << " bits";
  }
}

TEST(QuantizeModel, SolverNeverEndsWorseThanItsInit) {
  test::TempDir tmp;
  fs::create_directory(tmp.file("src"));
  test::write_random_model(tmp.file("src"), {});
  for (auto solver : {quant::SolverKind::Als, quant::SolverKind::Adam}) {
    engine::QuantConfig c = small_config(engine::Method::Lords, 3);
    c.solver = solver;
    c.scale_dtype = DType::F32;  // no storage rounding, so the bound is exact
    for (const auto& l : run(tmp.file("src"), c).layers) EXPECT_LE(l.err_sq, l.init_err_sq * (1 + 1e-6)) << l.name;
  }
}

TEST(QuantizeModel, TiedModelKeepsEmbeddingAndQwen2BiasesPassThrough) {
  test::TempDir tmp;
  fs::create_directory(tmp.file("src"));
  test::RandomModelSpec spec;
  spec.model_type = "qwen2";
  spec.tie_embeddings = true;
  spec.dtype = "BF16";
  test::write_random_model(tmp.file("src"), spec);
  run(tmp.file("src"), small_config(engine::Method::Lords, 4), tmp.file("ck"));
  const engine::Checkpoint ck(tmp.file("ck"));
  EXPECT_EQ(ck.quantized_names().size(), 14u);
  EXPECT_TRUE(ck.index().contains("model.layers.0.self_attn.q_proj.bias"));
  EXPECT_EQ(ck.index().at("model.embed_tokens.weight").dtype, "BF16");
  EXPECT_FALSE(ck.index().contains("lm_head.weight"));
}

TEST(QuantizeModel, NaNWeightFailsAndLeavesNoOutput) {
  test::TempDir tmp;
  fs::create_directory(tmp.file("src"));
  test::write_random_model(tmp.file("src"), {});
  // Poison one float of the last tensor's data (the file's final 4 bytes).
  {
    std::fstream f(tmp.file("src/model.safetensors"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-4, std::ios::end);
    const float nan = std::nanf("");
    f.write(reinterpret_cast<const char*>(&nan), 4);
  }
  engine::QuantConfig c = small_config(engine::Method::Lords, 4);
  c.layers = ".*";  // include lm_head (the last tensor written)
  try {
    run(tmp.file("src"), c, tmp.file("ck"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(tmp.file("ck")));
  for (const auto& entry : fs::directory_iterator(tmp.path()))
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
}

TEST(QuantizeModel, BadConfigAndUsageErrorsNameTheProblem) {
  test::TempDir tmp;
  fs::create_directory(tmp.file("src"));
  test::write_random_model(tmp.file("src"), {});
  auto expect_error = [&](const engine::QuantConfig& c, const std::string& phrase) {
    try {
      run(tmp.file("src"), c);
      FAIL() << "expected: " << phrase;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
    }
  };
  engine::QuantConfig c = small_config(engine::Method::Lords, 4);
  c.layers = "^nothing$";
  expect_error(c, "matches no linear layer");
  c = small_config(engine::Method::Lords, 5);
  expect_error(c, "--bits");
  c = small_config(engine::Method::Lords, 4);
  c.layers = "([";
  expect_error(c, "invalid regular expression");

  nlohmann::json cfg = test::random_model_config({});
  cfg.erase("hidden_size");
  std::ofstream(tmp.file("src/config.json")) << cfg.dump();
  expect_error(small_config(engine::Method::Lords, 4), "missing required key 'hidden_size'");
  cfg = test::random_model_config({});
  cfg["model_type"] = "gpt_neox";
  std::ofstream(tmp.file("src/config.json")) << cfg.dump();
  expect_error(small_config(engine::Method::Lords, 4), "unknown architecture 'gpt_neox'");
}

TEST(QuantizeModel, ExistingOutputIsRefusedUnlessForced) {
  test::TempDir tmp;
  fs::create_directory(tmp.file("src"));
  test::write_random_model(tmp.file("src"), {});
  const engine::QuantConfig c = small_config(engine::Method::Rtn, 4);
  run(tmp.file("src"), c, tmp.file("ck"));
  EXPECT_THROW(run(tmp.file("src"), c, tmp.file("ck")), Error);
  engine::QuantizeRequest req{tmp.file("src"), c, tmp.file("ck"), true, false};
  EXPECT_NO_THROW(engine::quantize_model(req));
  EXPECT_NO_THROW(engine::Checkpoint{tmp.file("ck")});
}

}  // namespace
