// TrainModel (peft, qat, qlora) on tiny quantized checkpoints: at initialization its loss is the
// inference runtime's loss on the same tokens; activation checkpointing changes no gradient bit;
// gradients accumulate and scale exactly; a few AdamW steps on a repeated batch lower the loss;
// the QAT schedule keeps W frozen while scales-only; a peft/qat save is a plain lords checkpoint
// that runtime::LlamaModel runs with the trained model's logits; a qlora save (base + adapters)
// loads back to the same model; parameter arrays round-trip; misuse throws Error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

#include "lords/core/dtype.h"
#include "lords/core/error.h"
#include "lords/engine/checkpoint.h"
#include "lords/io/safetensors.h"
#include "lords/train/adamw.h"
#include "train/train_model_util.h"

namespace lords::train::test {
namespace {

using runtime::Backend;
namespace fs = std::filesystem;

// Loss of the training forward vs the runtime forward, both fp32: different attention kernels
// (one-pass online softmax vs per-token) and head chunking move logits by ~1e-6 relative; a wrong
// weight, position or mask moves the loss by > 1e-2.
constexpr double kLossTol = 2e-5;
// Logits of a saved checkpoint run by LlamaModel vs the TrainModel forward: same, as max-abs over
// max |logit|.
constexpr double kLogitsTol = 1e-5;

TrainModelOptions options(TuneMode mode,
                          Backend backend = Backend::Cpu,
                          Recompute recompute = Recompute::Layers) {
  TrainModelOptions o;
  o.mode = mode;
  o.backend = backend;
  o.recompute = recompute;
  o.lora_rank = 4;
  o.lora_alpha = 8.0f;
  o.lora_seed = 3;
  return o;
}

TrainModel<float> load(const std::string& arch,
                       TuneMode mode,
                       Backend backend = Backend::Cpu,
                       Recompute recompute = Recompute::Layers) {
  return TrainModel<float>::load(Checkpoints::get().for_mode(arch, mode),
                                 options(mode, backend, recompute));
}

// LoRA B starts at 0, which makes every adapter gradient but dB vanish; tests that compare
// gradients first give B small random values.
template <class Real>
void randomize_lora_B(TrainModel<Real>& m, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 0.05);
  for (ParamRef<Real>& p : m.params())
    if (p.name.ends_with(".lora_B"))
      for (int64_t i = 0; i < p.size; ++i) p.value[i] = static_cast<Real>(normal(rng));
}

std::vector<std::vector<float>> grads_of(TrainModel<float>& m) {
  std::vector<std::vector<float>> g;
  for (const ParamRef<float>& p : m.params()) g.emplace_back(p.grad, p.grad + p.size);
  return g;
}

float max_abs(const std::vector<float>& v) {
  float m = 0;
  for (float x : v) m = std::max(m, std::abs(x));
  return m;
}

// max |a - b| / max(1, max |b|)
double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0, scale = 1;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  }
  return worst / scale;
}

// max |a - b| / max |b|, the worst element judged at the scale of the tensor.
double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
  return worst / std::max(1e-30, static_cast<double>(max_abs(b)));
}

std::vector<float> logits_of(TrainModel<float>& m, const Batch& b) {
  std::vector<float> out(static_cast<size_t>(b.B * b.T * m.config().vocab));
  m.forward_logits(out.data(), b.tokens.data(), b.B, b.T);
  return out;
}

std::vector<float> runtime_logits(runtime::LlamaModel& m, const Batch& b) {
  const int64_t V = m.vocab();
  std::vector<float> out(static_cast<size_t>(b.B * b.T * V));
  for (int64_t i = 0; i < b.B; ++i) {
    runtime::KvCache cache = m.make_cache(b.T);
    m.forward(
        b.tokens.data() + i * b.T, b.T, cache, out.data() + i * b.T * V, runtime::LogitsMode::All);
  }
  return out;
}

// n AdamW steps on one batch; returns the losses before each step.
std::vector<double> train_steps(TrainModel<float>& m, AdamW& opt, const Batch& b, int n, float lr) {
  std::vector<double> losses;
  for (int i = 0; i < n; ++i) {
    m.zero_grad();
    losses.push_back(
        m.forward_backward(b.tokens.data(), b.targets.data(), b.weights.data(), b.B, b.T).loss);
    opt.step(lr);
  }
  return losses;
}

const TuneMode kModes[] = {TuneMode::Peft, TuneMode::Qat, TuneMode::Qlora};

// ---------------------------------------------------------------------------------------------
// (a) At initialization every mode is the checkpoint's model (LoRA B = 0: qlora == base).

using ArchModeBackend = std::tuple<int, TuneMode, Backend>;
class InitialLoss : public ::testing::TestWithParam<ArchModeBackend> {};

TEST_P(InitialLoss, EqualsRuntimeLoss) {
  const auto [ai, mode, backend] = GetParam();
  const Arch arch = archs()[static_cast<size_t>(ai)];
  TrainModel<float> m = load(arch.name, mode, backend);
  runtime::LlamaModel rt =
      runtime::LlamaModel::load(Checkpoints::get().for_mode(arch.name, mode), backend);
  const Batch b = make_batch(m.config().vocab, 2, 9, 5);
  const double want = runtime_loss(rt, b);
  const CrossEntropyResult got =
      m.eval_loss(b.tokens.data(), b.targets.data(), b.weights.data(), b.B, b.T);
  EXPECT_NEAR(got.loss, want, kLossTol);
  EXPECT_GT(got.count, 0);
  // forward_backward reports the same loss.
  const CrossEntropyResult fb =
      m.forward_backward(b.tokens.data(), b.targets.data(), b.weights.data(), b.B, b.T);
  EXPECT_EQ(fb.loss, got.loss);
  EXPECT_EQ(fb.count, got.count);
  EXPECT_GT(m.trainable_count(), 0);
}

INSTANTIATE_TEST_SUITE_P(All,
                         InitialLoss,
                         ::testing::Combine(::testing::Values(0, 1, 2),
                                            ::testing::ValuesIn(kModes),
                                            ::testing::Values(Backend::Cpu, Backend::Ref)),
                         [](const auto& p) {
                           return std::string(
                                      archs()[static_cast<size_t>(std::get<0>(p.param))].name) +
                                  "_" + tune_mode_name(std::get<1>(p.param)) + "_" +
                                  runtime::backend_name(std::get<2>(p.param));
                         });

// ---------------------------------------------------------------------------------------------
// (c) Activation checkpointing: bit-identical gradients; accumulation and grad_scale are exact.

using ArchMode = std::tuple<int, TuneMode>;
class Gradients : public ::testing::TestWithParam<ArchMode> {};

TEST_P(Gradients, RecomputeIsBitIdentical) {
  const auto [ai, mode] = GetParam();
  const char* arch = archs()[static_cast<size_t>(ai)].name;
  for (Backend backend : {Backend::Cpu, Backend::Ref}) {
    TrainModel<float> keep = load(arch, mode, backend, Recompute::Off);
    TrainModel<float> recompute = load(arch, mode, backend, Recompute::Layers);
    randomize_lora_B(keep, 9);
    randomize_lora_B(recompute, 9);
    const Batch b = make_batch(keep.config().vocab, 2, 7, 8);
    const double l1 =
        keep.forward_backward(b.tokens.data(), b.targets.data(), b.weights.data(), b.B, b.T).loss;
    const double l2 =
        recompute.forward_backward(b.tokens.data(), b.targets.data(), b.weights.data(), b.B, b.T)
            .loss;
    EXPECT_EQ(l1, l2);
    const auto g1 = grads_of(keep), g2 = grads_of(recompute);
    ASSERT_EQ(g1.size(), g2.size());
    float largest = 0;
    for (size_t i = 0; i < g1.size(); ++i) {
      ASSERT_EQ(g1[i], g2[i]) << "tensor " << keep.params()[i].name << " "
                              << runtime::backend_name(backend);
      largest = std::max(largest, max_abs(g1[i]));
    }
    EXPECT_GT(largest, 1e-4f);  // the gradients are not trivially zero
  }
}

TEST_P(Gradients, AccumulateAndScaleExactly) {
  const auto [ai, mode] = GetParam();
  TrainModel<float> m = load(archs()[static_cast<size_t>(ai)].name, mode);
  randomize_lora_B(m, 4);
  const Batch b = make_batch(m.config().vocab, 3, 5, 2);
  auto run = [&](float scale) {
    m.forward_backward(b.tokens.data(), b.targets.data(), b.weights.data(), b.B, b.T, scale);
  };
  run(1.0f);
  const auto once = grads_of(m);
  run(1.0f);  // accumulates: g + g = 2 g exactly
  const auto twice = grads_of(m);
  m.zero_grad();
  run(0.5f);  // a power of two scales every product exactly
  const auto half = grads_of(m);
  for (size_t i = 0; i < once.size(); ++i)
    for (size_t j = 0; j < once[i].size(); ++j) {
      ASSERT_EQ(twice[i][j], 2.0f * once[i][j]);
      ASSERT_EQ(half[i][j], 0.5f * once[i][j]);
    }
  // Chunked logits (3 rows at a time) give the same gradients up to summation order.
  TrainModelOptions o = options(mode);
  o.head_rows = 3;
  TrainModel<float> chunked = TrainModel<float>::load(
      Checkpoints::get().for_mode(archs()[static_cast<size_t>(ai)].name, mode), o);
  randomize_lora_B(chunked, 4);
  chunked.forward_backward(b.tokens.data(), b.targets.data(), b.weights.data(), b.B, b.T);
  const auto c = grads_of(chunked);
  for (size_t i = 0; i < c.size(); ++i)
    EXPECT_LE(max_rel(c[i], once[i]), 1e-5) << chunked.params()[i].name;
}

INSTANTIATE_TEST_SUITE_P(All,
                         Gradients,
                         ::testing::Combine(::testing::Values(0, 1, 2),
                                            ::testing::ValuesIn(kModes)),
                         [](const auto& p) {
                           return std::string(
                                      archs()[static_cast<size_t>(std::get<0>(p.param))].name) +
                                  "_" + tune_mode_name(std::get<1>(p.param));
                         });

// ---------------------------------------------------------------------------------------------
// (d) Training sanity: AdamW on a repeated batch lowers the loss.

class Training : public ::testing::TestWithParam<TuneMode> {};

TEST_P(Training, AdamWLowersTheLoss) {
  const TuneMode mode = GetParam();
  TrainModel<float> m = load("llama_gqa", mode);
  AdamW opt(m.param_groups());
  const Batch b = make_batch(m.config().vocab, 2, 8, 21);
  const std::vector<double> losses = train_steps(m, opt, b, 25, 1e-2f);
  EXPECT_LT(losses.back(), 0.8 * losses.front())
      << "first " << losses.front() << " last " << losses.back();
  // The tuned model's eval loss agrees with its training loss of the same parameters.
  const double before =
      m.eval_loss(b.tokens.data(), b.targets.data(), b.weights.data(), b.B, b.T).loss;
  m.zero_grad();
  EXPECT_EQ(m.forward_backward(b.tokens.data(), b.targets.data(), b.weights.data(), b.B, b.T).loss,
            before);
}

INSTANTIATE_TEST_SUITE_P(Modes, Training, ::testing::ValuesIn(kModes), [](const auto& p) {
  return std::string(tune_mode_name(p.param));
});

TEST(TrainModelQat, ScalesOnlyPhaseKeepsLatentWeightsFrozen) {
  TrainModel<float> m = load("llama_gqa", TuneMode::Qat);
  GroupOptions g;
  g.scales_lr_scale = 4.0f;  // the author's recipe
  AdamW opt(m.param_groups(g));
  ASSERT_EQ(opt.groups().size(), 2u);
  EXPECT_EQ(opt.groups()[0].name, "scales");
  EXPECT_EQ(opt.groups()[1].name, "latent");
  const Batch b = make_batch(m.config().vocab, 2, 8, 4);
  const NamedArrays start = m.param_arrays();
  m.set_qat_phase(QatPhase::ScalesOnly);
  train_steps(m, opt, b, 3, 1e-2f);
  NamedArrays now = m.param_arrays();
  int latent = 0;
  for (const auto& [name, v] : start)
    if (name.ends_with(".latent")) {
      EXPECT_EQ(now.at(name), v) << name;
      ++latent;
    } else {
      EXPECT_NE(now.at(name), v) << name;
    }
  EXPECT_EQ(latent, 14);
  m.set_qat_phase(QatPhase::Joint);
  train_steps(m, opt, b, 2, 1e-2f);
  now = m.param_arrays();
  for (const auto& [name, v] : start)
    if (name.ends_with(".latent")) {
      EXPECT_NE(now.at(name), v) << name;
    }
}

// ---------------------------------------------------------------------------------------------
// (e) Outputs.

// Every tensor of `a` is in `b` with the same dtype and shape; metadata keys equal but `extra`.
void expect_same_layout(const std::string& a, const std::string& b) {
  io::TensorIndex ia, ib;
  auto ma = io::read_safetensors(a + "/model.safetensors", &ia);
  auto mb = io::read_safetensors(b + "/model.safetensors", &ib);
  ASSERT_EQ(ia.names(), ib.names());
  for (const std::string& n : ia.names()) {
    EXPECT_EQ(ia.at(n).dtype, ib.at(n).dtype) << n;
    EXPECT_EQ(ia.at(n).shape, ib.at(n).shape) << n;
  }
  EXPECT_EQ(mb.erase("lords.tuned"), 1u);
  EXPECT_EQ(ma, mb);
  EXPECT_TRUE(fs::exists(b + "/config.json"));
}

class LordsSave : public ::testing::TestWithParam<int> {};

TEST_P(LordsSave, PeftCheckpointRunsInRuntimeWithTrainedLogits) {
  const char* arch = archs()[static_cast<size_t>(GetParam())].name;
  const std::string src = Checkpoints::get().lords(arch);
  TrainModel<float> m = load(arch, TuneMode::Peft);
  AdamW opt(m.param_groups());
  const Batch b = make_batch(m.config().vocab, 2, 8, 6);
  train_steps(m, opt, b, 3, 1e-2f);
  lords::test::TempDir tmp;
  const std::string out = tmp.file("tuned");
  m.save(out);
  expect_same_layout(src, out);
  // The codes are the source's, byte for byte; only B and A changed.
  const engine::Checkpoint a(src), c(out);
  for (const std::string& name : a.quantized_names()) {
    const size_t n = a.index().at(name + ".qcodes").nbytes;
    EXPECT_EQ(0, std::memcmp(a.index().raw(name + ".qcodes"), c.index().raw(name + ".qcodes"), n))
        << name;
    EXPECT_NE(a.index().load_f32(name + ".lords_B").data,
              c.index().load_f32(name + ".lords_B").data);
  }
  // Zero overhead: the plain runtime computes the tuned model's logits.
  runtime::LlamaModel rt = runtime::LlamaModel::load(out, Backend::Cpu);
  EXPECT_LE(rel_diff(runtime_logits(rt, b), logits_of(m, b)), kLogitsTol);
  EXPECT_THROW(m.save(out), Error);  // refuses to overwrite by default
  EXPECT_NO_THROW(m.save(out, AtomicDir::Existing::Replace));
}

TEST_P(LordsSave, F16ScalesAreRoundedOnSave) {
  const char* arch = archs()[static_cast<size_t>(GetParam())].name;
  TrainModelOptions o = options(TuneMode::Peft);
  TrainModel<float> m = TrainModel<float>::load(Checkpoints::get().lords_f16(arch), o);
  AdamW opt(m.param_groups());
  const Batch b = make_batch(m.config().vocab, 2, 8, 7);
  train_steps(m, opt, b, 2, 1e-2f);
  lords::test::TempDir tmp;
  m.save(tmp.file("tuned"));
  expect_same_layout(Checkpoints::get().lords_f16(arch), tmp.file("tuned"));
  const engine::Checkpoint c(tmp.file("tuned"));
  for (const ParamRef<float>& p : m.params()) {
    const std::vector<float> stored = c.index().load_f32(p.name).data;
    ASSERT_EQ(static_cast<int64_t>(stored.size()), p.size);
    for (int64_t i = 0; i < p.size; ++i)
      ASSERT_EQ(stored[static_cast<size_t>(i)], fp16_to_f32(f32_to_fp16(p.value[i])));
  }
}

TEST_P(LordsSave, QatCheckpointHoldsTheFakeQuantizedModel) {
  const char* arch = archs()[static_cast<size_t>(GetParam())].name;
  TrainModel<float> m = load(arch, TuneMode::Qat);
  AdamW opt(m.param_groups());
  const Batch b = make_batch(m.config().vocab, 2, 8, 8);
  train_steps(m, opt, b, 4, 1e-2f);
  lords::test::TempDir tmp;
  m.save(tmp.file("tuned"));
  expect_same_layout(Checkpoints::get().lords(arch), tmp.file("tuned"));
  // Codes recomputed from the latent W: the runtime runs the fake-quantized weights.
  runtime::LlamaModel rt = runtime::LlamaModel::load(tmp.file("tuned"), Backend::Cpu);
  EXPECT_LE(rel_diff(runtime_logits(rt, b), logits_of(m, b)), kLogitsTol);
}

INSTANTIATE_TEST_SUITE_P(Archs, LordsSave, ::testing::Values(0, 1, 2), [](const auto& p) {
  return std::string(archs()[static_cast<size_t>(p.param)].name);
});

TEST(TrainModelQlora, SaveLoadRoundTrip) {
  const std::string base = Checkpoints::get().nf4("qwen2_bias");
  TrainModel<float> m = load("qwen2_bias", TuneMode::Qlora);
  AdamW opt(m.param_groups());
  const Batch b = make_batch(m.config().vocab, 2, 8, 9);
  train_steps(m, opt, b, 3, 1e-2f);
  lords::test::TempDir tmp;
  const std::string out = tmp.file("tuned");
  m.save(out);
  EXPECT_TRUE(fs::exists(out + "/" + kAdaptersFile));
  // Rank and alpha come from the adapters file, not the options.
  TrainModelOptions o = options(TuneMode::Qlora);
  o.lora_rank = 2;
  o.lora_alpha = 1.0f;
  TrainModel<float> back = TrainModel<float>::load(out, o);
  EXPECT_EQ(back.options().lora_rank, 4);
  EXPECT_EQ(back.options().lora_alpha, 8.0f);
  EXPECT_EQ(back.param_arrays(), m.param_arrays());
  EXPECT_EQ(logits_of(back, b), logits_of(m, b));
  // The runtime runs the output with a LoRA branch on every adapted linear: the tuned model.
  runtime::LlamaModel rt_out = runtime::LlamaModel::load(out, Backend::Cpu);
  runtime::LlamaModel rt_base = runtime::LlamaModel::load(base, Backend::Cpu);
  EXPECT_EQ(rt_out.lora_linears(), 14);
  EXPECT_LE(rel_diff(runtime_logits(rt_out, b), logits_of(m, b)), kLogitsTol);
  EXPECT_GT(rel_diff(runtime_logits(rt_out, b), runtime_logits(rt_base, b)), 100 * kLogitsTol);
  EXPECT_THROW(TrainModel<float>::load(out, options(TuneMode::Peft)), Error);
  // Saving the reloaded model again gives the same adapters.
  back.save(tmp.file("again"));
  TrainModel<float> again = TrainModel<float>::load(tmp.file("again"), o);
  EXPECT_EQ(again.param_arrays(), m.param_arrays());
}

TEST(TrainModelState, ParamArraysRoundTrip) {
  TrainModel<float> m = load("llama_tied", TuneMode::Qat);
  AdamW opt(m.param_groups());
  const Batch b = make_batch(m.config().vocab, 2, 6, 10);
  train_steps(m, opt, b, 2, 1e-2f);
  NamedArrays arrays = m.param_arrays();
  arrays["optim.something.else"] = {1.0f};  // other names are ignored
  TrainModel<float> fresh = load("llama_tied", TuneMode::Qat);
  const NamedArrays untouched = fresh.param_arrays();
  NamedArrays bad = arrays;
  bad.at("param.model.layers.1.mlp.up_proj.weight.lords_A").pop_back();
  EXPECT_THROW(fresh.load_param_arrays(bad), Error);
  EXPECT_EQ(fresh.param_arrays(), untouched);  // nothing changed
  fresh.load_param_arrays(arrays);
  EXPECT_EQ(fresh.param_arrays(), m.param_arrays());
  EXPECT_EQ(fresh.eval_loss(b.tokens.data(), b.targets.data(), b.weights.data(), b.B, b.T).loss,
            m.eval_loss(b.tokens.data(), b.targets.data(), b.weights.data(), b.B, b.T).loss);
}

TEST(TrainModelQat, FloatBaseSeedsTheLatentWeights) {
  TrainModelOptions o = options(TuneMode::Qat);
  o.qat_base = Checkpoints::get().source("llama_gqa");
  TrainModel<float> m = TrainModel<float>::load(Checkpoints::get().lords("llama_gqa"), o);
  runtime::LlamaModel src = runtime::LlamaModel::load(o.qat_base, Backend::Cpu);
  const NamedArrays p = m.param_arrays();
  EXPECT_EQ(p.at("param.model.layers.1.mlp.down_proj.weight.latent"),
            src.layers()[1].down.dense_weight()->data);
  EXPECT_EQ(p.at("param.model.layers.0.self_attn.k_proj.weight.latent"),
            src.layers()[0].k.dense_weight()->data);
}

TEST(TrainModelErrors, MisuseThrows) {
  auto kind_of = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.kind();
    }
    return ErrorKind::Internal;
  };
  // peft/qat train LoRDS scales: an rtn checkpoint cannot serve.
  EXPECT_EQ(kind_of([&] {
              TrainModel<float>::load(Checkpoints::get().nf4("llama_gqa"), options(TuneMode::Peft));
            }),
            ErrorKind::Usage);
  EXPECT_EQ(kind_of([&] {
              TrainModel<double>::load(Checkpoints::get().lords("llama_gqa"),
                                       options(TuneMode::Peft));
            }),
            ErrorKind::Usage);
  TrainModel<float> m = load("llama_gqa", TuneMode::Peft);
  Batch b = make_batch(m.config().vocab, 1, 4, 1);
  b.tokens[2] = 64;
  EXPECT_EQ(kind_of([&] { m.eval_loss(b.tokens.data(), b.targets.data(), nullptr, b.B, b.T); }),
            ErrorKind::Usage);
  const Batch too_long = make_batch(m.config().vocab, 1, 300, 1);  // max_position_embeddings 256
  EXPECT_EQ(kind_of([&] {
              m.forward_backward(too_long.tokens.data(), too_long.targets.data(), nullptr, 1, 300);
            }),
            ErrorKind::Usage);
  // No counted token: loss 0 and no gradient.
  Batch none = make_batch(m.config().vocab, 1, 4, 1);
  std::fill(none.targets.begin(), none.targets.end(), -100);
  const CrossEntropyResult r =
      m.forward_backward(none.tokens.data(), none.targets.data(), nullptr, 1, 4);
  EXPECT_EQ(r.loss, 0.0);
  EXPECT_EQ(r.count, 0.0);
  for (const auto& g : grads_of(m)) EXPECT_EQ(max_abs(g), 0.0f);
}

// Device cuda where no GPU can run it (a build without CUDA, or a machine without a GPU, as in CI): one
// Unsupported line at load, before any work. On a GPU machine the load succeeds (tests/cuda covers it).
TEST(TrainModelErrors, CudaWithoutAGpuIsOneLine) {
  TrainModelOptions o = options(TuneMode::Peft);
  o.device = runtime::Device::Cuda;
  try {
    TrainModel<float>::load(Checkpoints::get().lords("llama_gqa"), o);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cuda"), std::string::npos) << e.what();
  }
  o.device = runtime::Device::Cpu;
  o.tf32 = true;  // a cuda setting
  EXPECT_THROW(TrainModel<float>::load(Checkpoints::get().lords("llama_gqa"), o), Error);
}

}  // namespace
}  // namespace lords::train::test
