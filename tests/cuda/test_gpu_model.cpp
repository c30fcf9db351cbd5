// GpuLlamaModel against the CPU LlamaModel on seeded random models (tests/common/random_model): llama,
// qwen2 with q/k/v biases, mistral stored F16; tied and untied heads; head dims 16/64/80; GQA 1/2/3/4;
// and lords / rtn checkpoints of them (cuda::qmatmul, or the dense fallback for weights its kernels do
// not take). Checked: logits, greedy choices, decoding token by token and in chunks equal to prefill,
// perplexity (also with a KL base on the other device), generation, and the CPU model's errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include "common/random_model.h"
#include "common/temp_dir.h"
#include "common/test_quantize.h"
#include "gpu_test_util.h"
#include "io/io_test_util.h"
#include "lords/engine/quant_config.h"
#include "lords/runtime/generate.h"
#include "lords/runtime/gpu/gpu_llama_model.h"
#include "lords/runtime/llama_model.h"
#include "lords/runtime/load_model.h"
#include "lords/runtime/perplexity.h"

namespace fs = std::filesystem;
using namespace lords;
using runtime::Backend;
using runtime::GpuLlamaModel;
using runtime::LlamaModel;
using runtime::LogitsMode;

namespace {

// Tolerances on logits, as max |gpu - cpu| / max(1, max |cpu|) (random models give |logits| ~ 1-20).
// The GPU rounds every linear's input and dense weight to fp16 (2^-11 relative). Emulated on the CPU
// (the same weights stored F16, every linear input rounded to fp16) the models below move by
// max 1.5e-3..3.1e-3 and norm-wise 1.5e-3..2.7e-3; a wrong weight, head, position or cache row moves
// logits by O(1e-1).
constexpr double kGpuTol = 1e-2;
// The same, as the norm-wise ||gpu - cpu|| / ||cpu|| over all logits.
constexpr double kGpuNormTol = 8e-3;
// GPU prefill vs GPU decode: identical fp16 inputs up to fp32 summation order (cuBLAS and qmatmul
// pick different kernels for M = 1 and M = 11), which can flip the rounding of a few fp16 inputs.
constexpr double kIncrementalTol = 1e-3;
// The same where a decode step runs LoRDS linears on the single-token kernel (qmm_gemv.cuh): it rounds
// x ⊙ A to fp16 where the prefill rounds W_hat = L ⊙ (B A), two different roundings, each path within
// the GPU-vs-CPU error above, so they may differ by up to twice the emulated 3.1e-3 (measured on the
// H100: up to 3.3e-3 by the 11th step, the KV cache carrying earlier steps' differences). Each decode
// step is also held to kGpuTol against the CPU directly, which is the accuracy that matters (the H100:
// max 2.5e-3 / 4.1e-3 / 3.0e-3 for lords 4/3/2-bit, 3.5e-3 / 4.9e-3 / 2.4e-3 with the decode kernel).
constexpr double kDecodeVsPrefillTol = 6e-3;
// Perplexity: random models are confidently wrong (ppl 600-2000 over 96 tokens), which amplifies
// logit noise into ppl ~10x more than on a trained model; the emulation above moved ppl by up to
// 0.09% (mistral). The brief's 0.1% bar is checked on the real model (test_gpu_golden.cpp).
constexpr double kPplRelTol = 3e-3;
// KL(cpu || gpu) per token: emulated 1.1e-5..3.4e-5.
constexpr double kMaxKl = 1e-3;

std::vector<int32_t> tokens_for(int64_t vocab, int64_t T, uint32_t seed = 3) {
  std::vector<int32_t> t(static_cast<size_t>(T));
  uint32_t s = seed;
  for (int32_t& x : t) x = static_cast<int32_t>((s = s * 1664525u + 1013904223u) >> 8) % static_cast<int32_t>(vocab);
  return t;
}

std::vector<float> run_all(runtime::CausalLM& m, const std::vector<int32_t>& tokens) {
  const auto cache = m.new_cache(64);
  std::vector<float> logits(tokens.size() * static_cast<size_t>(m.vocab()));
  m.forward(tokens.data(), static_cast<int64_t>(tokens.size()), *cache, logits.data(), LogitsMode::All);
  EXPECT_EQ(cache->pos, static_cast<int64_t>(tokens.size()));
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

double norm_diff(const std::vector<float>& a, const std::vector<float>& b) {
  std::vector<double> bd(b.begin(), b.end());
  return test::rel_err(a, bd);
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
  qwen2.hidden = 128, qwen2.heads = 8, qwen2.kv_heads = 2, qwen2.seed = 5;  // Dh 16, GQA 4, biases
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

// Logits, greedy choices, prefill vs decode and perplexity of `gpu` against `cpu` (the same weights).
void expect_gpu_matches_cpu(LlamaModel& cpu, GpuLlamaModel& gpu, const std::string& what) {
  const int64_t V = cpu.vocab(), T = 11;
  const auto tokens = tokens_for(V, T);
  const auto want = run_all(cpu, tokens), got = run_all(gpu, tokens);
  const double max_err = rel_diff(got, want), norm_err = norm_diff(got, want);
  EXPECT_LE(max_err, kGpuTol) << what;
  EXPECT_LE(norm_err, kGpuNormTol) << what;
  std::printf("%s: gpu vs cpu logits, max %.3g, norm-wise %.3g\n", what.c_str(), max_err, norm_err);

  // Greedy choices agree wherever the CPU's top two logits are further apart than the GPU's error
  // (teacher-forced, so one near-tie does not derail the rest).
  runtime::KvCache cc = cpu.make_cache(32);
  runtime::GpuKvCache gc = gpu.make_cache(32);
  std::vector<float> lc(static_cast<size_t>(V)), lg(static_cast<size_t>(V));
  int32_t tok = tokens[0];
  int clear = 0;
  for (int step = 0; step < 12; ++step) {
    cpu.forward(&tok, 1, cc, lc.data(), LogitsMode::Last);
    gpu.forward(&tok, 1, gc, lg.data(), LogitsMode::Last);
    std::vector<float> top2 = lc;
    std::partial_sort(top2.begin(), top2.begin() + 2, top2.end(), std::greater<>());
    const auto best_cpu = static_cast<int32_t>(std::max_element(lc.begin(), lc.end()) - lc.begin());
    const auto best_gpu = static_cast<int32_t>(std::max_element(lg.begin(), lg.end()) - lg.begin());
    double scale = 1;
    for (float x : lc) scale = std::max(scale, double(std::abs(x)));
    if (top2[0] - top2[1] > 2 * kGpuTol * scale) {
      ++clear;
      EXPECT_EQ(best_gpu, best_cpu) << what << ", greedy step " << step;
    }
    tok = best_cpu;
  }
  EXPECT_GE(clear, 3) << what << ": too few clear greedy choices to compare";

  // Decode step by step and in chunks 4 + 1 + 6 (prefill on top of a cache) equal the GPU prefill.
  runtime::GpuKvCache cache = gpu.make_cache(T);
  std::vector<float> step(static_cast<size_t>(V));
  double step_err = 0;
  for (int64_t t = 0; t < T; ++t) {
    gpu.forward(&tokens[static_cast<size_t>(t)], 1, cache, step.data(), LogitsMode::Last);
    const std::vector<float> row(got.begin() + t * V, got.begin() + (t + 1) * V);
    const std::vector<float> cpu_row(want.begin() + t * V, want.begin() + (t + 1) * V);
    const double err = rel_diff(step, cpu_row);
    step_err = std::max(step_err, err);
    ASSERT_LE(err, kGpuTol) << what << ", decode step " << t << " vs cpu";
    ASSERT_LE(rel_diff(step, row), kDecodeVsPrefillTol) << what << ", decode step " << t;
  }
  std::printf("%s: gpu decode steps vs cpu logits, max %.3g\n", what.c_str(), step_err);
  EXPECT_EQ(cache.pos, T);
  cache.reset();
  int64_t done = 0;
  for (int64_t chunk : {4, 1, 6}) {
    gpu.forward(&tokens[static_cast<size_t>(done)], chunk, cache, step.data(), LogitsMode::Last);
    done += chunk;
    const std::vector<float> row(got.begin() + (done - 1) * V, got.begin() + done * V);
    // the chunks from the single token on read its K, V rows from the cache
    EXPECT_LE(rel_diff(step, row), done > 4 ? kDecodeVsPrefillTol : kIncrementalTol)
        << what << ", chunk ending at " << done;
  }

  // Perplexity (shared code, both devices) and the KL divergence between them.
  const auto text = tokens_for(V, 6 * 32, 17);
  runtime::PerplexityOptions opt;
  opt.n_ctx = 32;
  opt.progress = false;
  const runtime::PerplexityResult pc = runtime::perplexity(cpu, text, opt);
  const runtime::PerplexityResult pg = runtime::perplexity(gpu, text, opt, &cpu);
  EXPECT_EQ(pg.scored, pc.scored);
  EXPECT_LE(std::abs(pg.ppl() / pc.ppl() - 1.0), kPplRelTol) << what << ": ppl gpu " << pg.ppl() << " cpu " << pc.ppl();
  ASSERT_TRUE(pg.has_kl);
  EXPECT_LE(pg.kl, kMaxKl) << what;
  std::printf("%s: ppl cpu %.6f gpu %.6f, KL %.3g, top-1 %.3f\n", what.c_str(), pc.ppl(), pg.ppl(), pg.kl, pg.top1);
}

class GpuPerModel : public ::testing::TestWithParam<Named> {};

TEST_P(GpuPerModel, MatchesCpuModel) {
  LORDS_REQUIRE_GPU();
  test::TempDir tmp;
  const std::string dir = write_model(tmp, "m", GetParam().spec);
  LlamaModel cpu = LlamaModel::load(dir, Backend::Cpu);
  GpuLlamaModel gpu(cpu);
  EXPECT_EQ(gpu.quantized_linears(), 0);
  EXPECT_EQ(gpu.vocab(), cpu.vocab());
  expect_gpu_matches_cpu(cpu, gpu, GetParam().name);
}

INSTANTIATE_TEST_SUITE_P(Models, GpuPerModel, ::testing::ValuesIn(model_zoo()),
                         [](const auto& p) { return std::string(p.param.name); });

// ----------------------------------------------------------------------------------------------
// Quantized checkpoints: qmatmul on the GPU vs qmatmul on the CPU, same packed codes.

struct QuantCase {
  const char* name;
  engine::Method method;
  int bits;
  int64_t block;
  const char* model;  // "llama" | "qwen2_tied"
};
void PrintTo(const QuantCase& c, std::ostream* os) { *os << c.name; }

class GpuQuantized : public ::testing::TestWithParam<QuantCase> {};

TEST_P(GpuQuantized, CheckpointMatchesCpu) {
  LORDS_REQUIRE_GPU();
  const QuantCase& c = GetParam();
  test::RandomModelSpec spec;
  if (std::string(c.model) == "qwen2_tied") {
    spec.model_type = "qwen2";
    spec.tie_embeddings = true;
  }
  test::TempDir tmp;
  const std::string src = write_model(tmp, "src", spec), ck = tmp.file("ck");
  test::quantize_quietly(src, ck, test::test_quant_config(c.method, c.bits, c.block));
  LlamaModel cpu = LlamaModel::load(ck, Backend::Cpu);
  ASSERT_EQ(cpu.quantized_linears(), 7 * spec.layers);
  GpuLlamaModel gpu(cpu);
  // Every quantized linear runs on qmatmul, or (weights its kernels refuse, e.g. block 8) dense.
  EXPECT_EQ(gpu.quantized_linears() + gpu.dequantized_linears(), 7 * spec.layers);
  std::printf("%s: %lld linears on qmatmul, %lld dequantized\n", c.name,
              static_cast<long long>(gpu.quantized_linears()), static_cast<long long>(gpu.dequantized_linears()));
  if (c.block % 16 == 0) {
    EXPECT_EQ(gpu.dequantized_linears(), 0) << "a supported weight fell back to dense";
  }
  expect_gpu_matches_cpu(cpu, gpu, c.name);
}

INSTANTIATE_TEST_SUITE_P(Methods, GpuQuantized,
                         ::testing::Values(QuantCase{"lords4_g16", engine::Method::Lords, 4, 16, "llama"},
                                           QuantCase{"lords3_g32_tied", engine::Method::Lords, 3, 32, "qwen2_tied"},
                                           QuantCase{"lords2_g16", engine::Method::Lords, 2, 16, "llama"},
                                           QuantCase{"rtn4_g16_tied", engine::Method::Rtn, 4, 16, "qwen2_tied"},
                                           QuantCase{"rtn3_g32", engine::Method::Rtn, 3, 32, "llama"},
                                           QuantCase{"rtn4_g8_fallback", engine::Method::Rtn, 4, 8, "llama"}),
                         [](const auto& p) { return std::string(p.param.name); });

// ----------------------------------------------------------------------------------------------
// The shared evaluation code and the errors.

TEST(GpuModel, GenerateRunsThroughTheSharedCode) {
  LORDS_REQUIRE_GPU();
  test::TempDir tmp;
  const std::string dir = write_model(tmp, "m", {});
  const std::unique_ptr<runtime::CausalLM> gpu = runtime::load_causal_lm(dir, runtime::Device::Cuda);
  EXPECT_EQ(gpu->device(), runtime::Device::Cuda);
  runtime::GenerateOptions opt;
  opt.max_new_tokens = 9;
  opt.sampling = {0.8f, 0.9f, 42};
  const auto prompt = tokens_for(gpu->vocab(), 5);
  const runtime::GenerateResult a = runtime::generate(*gpu, prompt, opt), b = runtime::generate(*gpu, prompt, opt);
  ASSERT_EQ(a.tokens.size(), 9u);
  EXPECT_EQ(a.tokens, b.tokens);  // deterministic for a seed
  for (int32_t t : a.tokens) EXPECT_TRUE(t >= 0 && t < gpu->vocab());
}

TEST(GpuModel, BadInputFailsLikeTheCpuModelAndLeavesTheCacheUntouched) {
  LORDS_REQUIRE_GPU();
  test::TempDir tmp;
  const std::string dir = write_model(tmp, "m", {});  // max_position_embeddings 256, vocab 96
  LlamaModel cpu = LlamaModel::load(dir, Backend::Cpu);
  GpuLlamaModel m(cpu);
  std::vector<float> logits(static_cast<size_t>(16 * m.vocab()));
  const auto tokens = tokens_for(m.vocab(), 16);
  auto usage = [](const std::function<void()>& fn, const std::vector<std::string>& phrases) {
    EXPECT_EQ(test::expect_error(fn, phrases), ErrorKind::Usage);
  };
  usage([&] { m.make_cache(257); }, {"context of 257 tokens exceeds the model's maximum of 256"});
  runtime::GpuKvCache full = m.make_cache();
  EXPECT_EQ(full.capacity(), 256);
  full.pos = 250;
  usage([&] { m.forward(tokens.data(), 10, full, logits.data(), LogitsMode::Last); },
        {"context of 260 tokens exceeds the model's maximum of 256"});
  EXPECT_EQ(full.pos, 250);
  runtime::GpuKvCache small = m.make_cache(8);
  m.forward(tokens.data(), 5, small, logits.data(), LogitsMode::All);
  usage([&] { m.forward(tokens.data(), 4, small, logits.data(), LogitsMode::All); },
        {"context of 9 tokens", "capacity of 8"});
  std::vector<int32_t> bad = {1, 2, -1};
  usage([&] { m.forward(bad.data(), 3, small, logits.data(), LogitsMode::All); }, {"token id -1", "[0, 96)"});
  bad[2] = 96;
  usage([&] { m.forward(bad.data(), 3, small, logits.data(), LogitsMode::All); }, {"token id 96"});
  usage([&] { m.forward(tokens.data(), 0, small, logits.data(), LogitsMode::All); }, {"at least one token"});
  EXPECT_EQ(small.pos, 5);
  // A cache of the other device, either way round.
  runtime::KvCache host_cache = cpu.make_cache(8);
  usage([&] { m.forward(tokens.data(), 1, host_cache, logits.data(), LogitsMode::Last); }, {"another device"});
  usage([&] { cpu.forward(tokens.data(), 1, small, logits.data(), LogitsMode::Last); }, {"another device"});
  runtime::GpuKvCache other(3, 8, 2, 16);  // 3 layers: another model's cache
  usage([&] { m.forward(tokens.data(), 1, other, logits.data(), LogitsMode::All); }, {"KV cache"});
  // The cache still works after the refusals, and the last three rows are those of a fresh run.
  m.forward(tokens.data() + 5, 3, small, logits.data(), LogitsMode::All);
  EXPECT_EQ(small.pos, 8);
  runtime::GpuKvCache fresh = m.make_cache(8);
  std::vector<float> all(static_cast<size_t>(8 * m.vocab()));
  m.forward(tokens.data(), 8, fresh, all.data(), LogitsMode::All);
  const std::vector<float> tail(all.begin() + 5 * m.vocab(), all.end());
  const std::vector<float> got(logits.begin(), logits.begin() + 3 * m.vocab());
  EXPECT_LE(rel_diff(got, tail), kIncrementalTol);
}

TEST(GpuModel, SlidingWindowIsRefusedBeyondTheWindow) {
  LORDS_REQUIRE_GPU();
  test::TempDir tmp;
  test::RandomModelSpec spec;
  spec.model_type = "mistral";
  nlohmann::json config = test::random_model_config(spec);
  const std::string dir = write_model(tmp, "m", spec);
  config["sliding_window"] = 6;
  std::ofstream(dir + "/config.json") << config.dump();
  LlamaModel cpu = LlamaModel::load(dir, Backend::Cpu);
  GpuLlamaModel m(cpu);
  runtime::GpuKvCache cache = m.make_cache(16);
  std::vector<float> logits(static_cast<size_t>(m.vocab()));
  const auto tokens = tokens_for(m.vocab(), 7);
  m.forward(tokens.data(), 6, cache, logits.data(), LogitsMode::Last);
  EXPECT_EQ(test::expect_error([&] { m.forward(&tokens[6], 1, cache, logits.data(), LogitsMode::Last); },
                               {"sliding window of 6"}),
            ErrorKind::Unsupported);
}

TEST(GpuModel, RefBackendIsCpuOnly) {
  test::TempDir tmp;
  const std::string dir = write_model(tmp, "m", {});
  EXPECT_EQ(test::expect_error([&] { runtime::load_causal_lm(dir, runtime::Device::Cuda, Backend::Ref); },
                               {"--backend ref", "cpu only"}),
            ErrorKind::Usage);
}

}  // namespace

namespace {

// Decoding through the CUDA graph (the default) gives the eager path's logits exactly: same kernels,
// position read from device memory. Two caches interleaved (the graph is re-captured for each) and a
// prefill between decode steps (which drops the graph) included; dense and LoRDS-quantized weights.
TEST(GpuModelGraphs, DecodeEqualsEagerAcrossCachesAndPrefills) {
  LORDS_REQUIRE_GPU();
  test::TempDir tmp;
  test::RandomModelSpec spec;
  const std::string src = write_model(tmp, "src", spec), ck = tmp.file("ck");
  test::quantize_quietly(src, ck, test::test_quant_config(engine::Method::Lords, 4, 32));
  for (const std::string& dir : {src, ck}) {
    LlamaModel cpu = LlamaModel::load(dir, Backend::Cpu);
    GpuLlamaModel graph(cpu), eager(cpu);
    ASSERT_TRUE(graph.cuda_graphs());
    eager.set_cuda_graphs(false);
    const int64_t V = cpu.vocab();
    const auto tokens = tokens_for(V, 24, 7);
    std::vector<float> a(static_cast<size_t>(4 * V)), b(a.size());
    auto run = [&](GpuLlamaModel& m, runtime::GpuKvCache& c, int64_t at, int64_t n) {
      std::vector<float> out(static_cast<size_t>(n * V));
      m.forward(tokens.data() + at, n, c, out.data(), LogitsMode::All);
      return out;
    };
    runtime::GpuKvCache g1 = graph.make_cache(24), g2 = graph.make_cache(24);
    runtime::GpuKvCache e1 = eager.make_cache(24), e2 = eager.make_cache(24);
    EXPECT_EQ(run(graph, g1, 0, 4), run(eager, e1, 0, 4));  // prefill
    EXPECT_EQ(run(graph, g2, 0, 2), run(eager, e2, 0, 2));
    for (int64_t t = 4; t < 12; ++t) {  // decode, alternating caches
      EXPECT_EQ(run(graph, g1, t, 1), run(eager, e1, t, 1)) << dir << " cache 1 step " << t;
      EXPECT_EQ(run(graph, g2, t - 2, 1), run(eager, e2, t - 2, 1)) << dir << " cache 2 step " << t;
    }
    EXPECT_EQ(run(graph, g1, 12, 3), run(eager, e1, 12, 3));  // a prefill drops the graph
    for (int64_t t = 15; t < 20; ++t) EXPECT_EQ(run(graph, g1, t, 1), run(eager, e1, t, 1)) << dir << " step " << t;
  }
}

}  // namespace
