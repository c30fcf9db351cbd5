// The finetune tests' shared fixture (tests/train/test_finetune.cpp, tests/cuda/test_gpu_train.cpp): a
// tiny seeded qwen2 model carrying the tiny Qwen2 tokenizer (ChatML tokens), quantized by the engine
// (lords and rtn NF4), a JSONL QA file and a plain-text file, written once per test binary; and the
// options of a short run on them.
#pragma once

#include <filesystem>
#include <string>

#include <fmt/format.h>

#include "common/random_model.h"
#include "common/temp_dir.h"
#include "lords/engine/quantize_model.h"
#include "lords/train/finetune.h"
#include "train/train_model_util.h"

namespace lords::train::fixture {

namespace fs = std::filesystem;
using lords::test::RandomModelSpec;

// The model, its checkpoints and data files, written once per test binary.
class Fixture {
 public:
  static Fixture& get() {
    static Fixture f;
    return f;
  }
  std::string lords() const { return dir_.file("lords"); }
  std::string nf4() const { return dir_.file("nf4"); }
  std::string jsonl() const { return dir_.file("qa.jsonl"); }
  std::string text() const { return dir_.file("play.txt"); }

 private:
  Fixture() {
    const std::string src = dir_.file("src");
    fs::create_directory(src);
    lords::test::RandomModelSpec spec;
    spec.model_type = "qwen2";
    spec.hidden = 32, spec.intermediate = 48, spec.layers = 2, spec.heads = 4, spec.kv_heads = 2;
    spec.vocab = 768;  // the tokenizer's 760 ids fit
    spec.seed = 21;
    lords::test::write_random_model(src, spec);
    fs::copy_file(
        std::string(LORDS_SOURCE_DIR) + "/tests/tokenizer/fixtures/tiny_qwen2_tokenizer.json",
        src + "/tokenizer.json");
    test::quantize_tiny(src, lords(), engine::Method::Lords, DType::F32);  // scales saved exactly
    test::quantize_tiny(src, nf4(), engine::Method::Rtn, DType::F32);
    // Answers follow from the question, so a few updates learn them.
    const char* colors[] = {"red", "green", "blue"};
    std::string qa;
    for (int i = 0; i < 48; ++i)
      qa += fmt::format(
          "{{\"question\": \"What color is box {}?\", \"answer\": \"Box {} is {}.\"}}\n",
          i,
          i,
          colors[i % 3]);
    lords::test::write_bytes(jsonl(), qa);
    std::string play;
    for (int i = 0; i < 40; ++i) play += "To be, or not to be, that is the question. ";
    lords::test::write_bytes(text(), play);
  }
  lords::test::TempDir dir_;
};

inline FinetuneOptions options(TuneMode mode, const std::string& output) {
  FinetuneOptions o;
  o.checkpoint = mode == TuneMode::Qlora ? Fixture::get().nf4() : Fixture::get().lords();
  o.data = {Fixture::get().jsonl()};
  o.output = output;
  o.mode = mode;
  o.steps = 12;
  o.batch = 4;
  o.seq_len = 40;
  o.lr = 1e-2f;  // a tiny random model learns fast at a high rate
  o.warmup = 2;
  o.heldout_fraction = 0.25;
  o.threads = 2;
  o.lora_rank = 4;
  o.lora_alpha = 8;
  return o;
}

}  // namespace lords::train::fixture
