// The default real model (SmolLM2-135M, 30 layers) on the GPU against PyTorch/transformers, with the
// fixture of tests/runtime/test_golden.cpp. Runs where the model is installed (scripts/setup.sh assets,
// $LORDS_CACHE), skipped otherwise. The logit bars are looser than the cpu's (1e-3, argmax everywhere):
// the GPU feeds every matmul fp16 inputs, and 30 layers of that move logits by a few 1e-3. Perplexity
// must stay within 0.1% of the cpu runtime's on the same tokens.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "gpu_test_util.h"
#include "lords/runtime/gpu/gpu_llama_model.h"
#include "lords/runtime/llama_model.h"
#include "lords/runtime/perplexity.h"
#include "lords/runtime/text_source.h"

namespace fs = std::filesystem;
using namespace lords;

namespace {

constexpr double kLogitRelTol = 2e-2;    // max |gpu - ref| over a row / max |ref| of the row
constexpr double kArgmaxAgreement = 0.9;  // share of positions whose top token matches transformers'
constexpr double kPplRelTol = 5e-3;       // vs transformers: the cpu's bar
constexpr double kPplVsCpuRelTol = 1e-3;  // vs the cpu runtime on the same tokens: fp16 noise only

std::string cache_dir() {
  if (const char* c = std::getenv("LORDS_CACHE")) return c;
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "/root") + "/.cache/lords";
}

class GpuGolden : public ::testing::Test {
 protected:
  void SetUp() override {
    LORDS_REQUIRE_GPU();
    model_path_ = cache_dir() + "/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
    if (!fs::exists(model_path_)) GTEST_SKIP() << "default model not installed (" << model_path_ << ")";
    std::ifstream in(std::string(LORDS_SOURCE_DIR) + "/tests/runtime/fixtures/smollm2_golden.json");
    golden_ = nlohmann::json::parse(in);
  }
  std::string model_path_;
  nlohmann::json golden_;
};

TEST_F(GpuGolden, LogitsAndPerplexityMatchTransformers) {
  runtime::LlamaModel host = runtime::LlamaModel::load(model_path_, runtime::Backend::Cpu);
  runtime::GpuLlamaModel model(host);
  const auto cols = golden_["columns"].get<std::vector<int64_t>>();
  int64_t positions = 0, agree = 0;
  for (const auto& p : golden_["prompts"]) {
    const auto ids = p["ids"].get<std::vector<int32_t>>();
    const auto T = static_cast<int64_t>(ids.size());
    runtime::GpuKvCache cache = model.make_cache(T);
    std::vector<float> logits(static_cast<size_t>(T * model.vocab()));
    model.forward(ids.data(), T, cache, logits.data(), runtime::LogitsMode::All);
    double worst = 0;
    for (int64_t t = 0; t < T; ++t) {
      const float* row = &logits[static_cast<size_t>(t * model.vocab())];
      const double absmax = p["row_absmax"][static_cast<size_t>(t)].get<double>();
      for (size_t c = 0; c < cols.size(); ++c)
        worst = std::max(worst,
                         std::fabs(row[cols[c]] - p["logits"][static_cast<size_t>(t)][c].get<double>()) / absmax);
      ++positions;
      agree += std::max_element(row, row + model.vocab()) - row == p["argmax"][static_cast<size_t>(t)].get<int64_t>();
    }
    EXPECT_LT(worst, kLogitRelTol);
    std::printf("gpu, prompt of %lld tokens: max relative logit error %.3g\n", static_cast<long long>(T), worst);
  }
  EXPECT_GE(static_cast<double>(agree), kArgmaxAgreement * static_cast<double>(positions));

  const auto& ref = golden_["perplexity"];
  const std::string text = cache_dir() + "/shakespeare/" + ref["text"].get<std::string>();
  if (!fs::exists(text)) GTEST_SKIP() << "text not installed (" << text << ")";
  const Tokenizer tok = runtime::load_model_tokenizer(model_path_);
  const std::vector<int32_t> ids = tok.encode(runtime::read_text_file(text), AddSpecial::No);
  runtime::PerplexityOptions opt;
  opt.n_ctx = ref["n_ctx"].get<int64_t>();
  opt.max_chunks = ref["chunks"].get<int64_t>();
  opt.progress = false;
  const runtime::PerplexityResult r = runtime::perplexity(model, ids, opt);
  EXPECT_EQ(r.scored, ref["scored"].get<int64_t>());
  const double want = ref["ppl"].get<double>();
  EXPECT_NEAR(r.ppl(), want, kPplRelTol * want);
  const runtime::PerplexityResult cpu = runtime::perplexity(host, ids, opt);
  EXPECT_NEAR(r.ppl(), cpu.ppl(), kPplVsCpuRelTol * cpu.ppl());
  std::printf("gpu perplexity %.6f (%.1f s), cpu %.6f (%.1f s), transformers %.6f\n", r.ppl(), r.seconds, cpu.ppl(),
              cpu.seconds, want);
}

}  // namespace
