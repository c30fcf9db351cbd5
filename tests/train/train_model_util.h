// Helpers of the TrainModel tests: tiny seeded random models (tests/common/random_model.h)
// quantized by the engine into lords checkpoints (method lords for peft/qat, rtn NF4 for qlora),
// created once per test binary and shared; seeded token batches; and the reference loss of the
// inference runtime (runtime::LlamaModel logits -> weighted cross-entropy in fp64).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "common/random_model.h"
#include "common/temp_dir.h"
#include "common/test_quantize.h"
#include "lords/engine/quant_config.h"
#include "lords/runtime/llama_model.h"
#include "lords/train/train_model.h"

namespace lords::train {
// gtest prints parameters through PrintTo found by ADL.
inline void PrintTo(TuneMode m, std::ostream* os) {
  *os << tune_mode_name(m);
}
}  // namespace lords::train

namespace lords::train::test {

// Three tiny architectures: GQA 2 (llama), tied embeddings with GQA 4 (llama), qwen2's q/k/v
// biases. D 32, 2 layers, V 64, Dh 8: every test runs in milliseconds, even fp64 ref under ASan.
struct Arch {
  const char* name;
  lords::test::RandomModelSpec spec;
};

inline std::vector<Arch> archs() {
  lords::test::RandomModelSpec base;
  base.hidden = 32, base.intermediate = 48, base.layers = 2, base.heads = 4, base.kv_heads = 2;
  base.vocab = 64, base.seed = 11;
  lords::test::RandomModelSpec tied = base;
  tied.tie_embeddings = true, tied.kv_heads = 1, tied.seed = 12;
  lords::test::RandomModelSpec qwen2 = base;
  qwen2.model_type = "qwen2", qwen2.seed = 13;
  return {{"llama_gqa", base}, {"llama_tied", tied}, {"qwen2_bias", qwen2}};
}

// The tests' tiny checkpoints: 4 bits, block 16, rank 4 (the parity rank of these tiny shapes would
// be 1), 3 solver steps.
inline void quantize_tiny(const std::string& src, const std::string& out, engine::Method method, DType scale_dtype) {
  engine::QuantConfig c = lords::test::test_quant_config(method, 4, 16);
  c.rank = 4;
  c.scale_dtype = scale_dtype;
  lords::test::quantize_quietly(src, out, c);
}

// Checkpoints of every arch, written once per process: "<arch>" (lords, F32 scales, rank 4),
// "<arch>_f16" (lords, F16 scales), "<arch>_nf4" (rtn NF4, block 16), and the HF source
// "<arch>_src".
class Checkpoints {
 public:
  static Checkpoints& get() {
    static Checkpoints c;
    return c;
  }
  std::string lords(const std::string& arch) { return dir_.file(arch); }
  std::string lords_f16(const std::string& arch) { return dir_.file(arch + "_f16"); }
  std::string nf4(const std::string& arch) { return dir_.file(arch + "_nf4"); }
  std::string source(const std::string& arch) { return dir_.file(arch + "_src"); }
  // The checkpoint a mode trains from.
  std::string for_mode(const std::string& arch, TuneMode mode) {
    return mode == TuneMode::Qlora ? nf4(arch) : lords(arch);
  }

 private:
  Checkpoints() {
    for (const Arch& a : archs()) {
      const std::string src = source(a.name);
      std::filesystem::create_directory(src);
      lords::test::write_random_model(src, a.spec);
      quantize_tiny(src, lords(a.name), engine::Method::Lords, DType::F32);
      quantize_tiny(src, lords_f16(a.name), engine::Method::Lords, DType::F16);
      quantize_tiny(src, nf4(a.name), engine::Method::Rtn, DType::F16);
    }
  }
  lords::test::TempDir dir_;
};

// A batch of B sequences of T tokens: targets are the next token (the last one -100, ignored, as
// HF's label shift leaves it), one more target masked by -100, and fractional loss weights.
struct Batch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> tokens, targets;
  std::vector<float> weights;
};

inline Batch make_batch(int64_t V, int64_t B, int64_t T, uint32_t seed) {
  Batch b;
  b.B = B, b.T = T;
  const auto n = static_cast<size_t>(B * T);
  b.tokens.resize(n), b.targets.resize(n), b.weights.resize(n);
  uint32_t s = seed;
  auto next = [&] { return (s = s * 1664525u + 1013904223u) >> 8; };
  for (auto& t : b.tokens) t = static_cast<int32_t>(next() % static_cast<uint32_t>(V));
  for (int64_t i = 0; i < B; ++i)
    for (int64_t t = 0; t < T; ++t) {
      const auto m = static_cast<size_t>(i * T + t);
      b.targets[m] = t + 1 < T ? b.tokens[m + 1] : -100;
      b.weights[m] = 0.5f + static_cast<float>(next() % 4) * 0.25f;
    }
  b.targets[1] = -100;
  return b;
}

// The batch's loss computed by the inference runtime: each sequence through LlamaModel::forward
// (fresh cache, LogitsMode::All), then sum_m w_m (lse_m - logit_m[target_m]) / sum_m w_m in fp64.
inline double runtime_loss(runtime::LlamaModel& m, const Batch& b) {
  const int64_t V = m.vocab();
  std::vector<float> logits(static_cast<size_t>(b.T * V));
  double num = 0, den = 0;
  for (int64_t i = 0; i < b.B; ++i) {
    runtime::KvCache cache = m.make_cache(b.T);
    m.forward(b.tokens.data() + i * b.T, b.T, cache, logits.data(), runtime::LogitsMode::All);
    for (int64_t t = 0; t < b.T; ++t) {
      const auto mi = static_cast<size_t>(i * b.T + t);
      if (b.targets[mi] < 0 || b.weights[mi] <= 0) continue;
      const float* row = logits.data() + t * V;
      double mx = row[0], sum = 0;
      for (int64_t v = 0; v < V; ++v) mx = std::max(mx, static_cast<double>(row[v]));
      for (int64_t v = 0; v < V; ++v) sum += std::exp(row[v] - mx);
      num += b.weights[mi] * (std::log(sum) + mx - row[b.targets[mi]]);
      den += b.weights[mi];
    }
  }
  return num / den;
}

inline const char* mode_label(TuneMode m) {
  return tune_mode_name(m);
}

}  // namespace lords::train::test
