// lords finetune end to end through the real binary, on a seeded tiny model carrying the tiny Qwen2
// tokenizer, quantized by `lords quantize`: a peft output runs in perplexity and generate; a qlora
// output (base + adapters) runs in perplexity with its adapters and in --eval-only; --stop-at then
// --resume finishes the run; bad input is one line and exit 1 with nothing written.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/cli_runner.h"
#include "common/random_model.h"
#include "common/temp_dir.h"

namespace fs = std::filesystem;
using namespace lords;

namespace {

using Result = test::CliResult;

Result run_cli(const std::string& args) {
  return test::run_cli(LORDS_BINARY, args);
}

nlohmann::json json_of(const Result& r) {
  try {
    return nlohmann::json::parse(r.out);
  } catch (const nlohmann::json::exception&) {
    ADD_FAILURE() << "not JSON:\n" << r.out;
    return {};
  }
}

class CliFinetune : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directory(tmp_.file("m"));
    test::RandomModelSpec spec;
    spec.model_type = "qwen2";
    spec.hidden = 32, spec.intermediate = 48, spec.layers = 2, spec.heads = 4, spec.kv_heads = 2;
    spec.vocab = 768;  // the tiny tokenizer's ids fit
    test::write_random_model(tmp_.file("m"), spec);
    fs::copy_file(
        std::string(LORDS_SOURCE_DIR) + "/tests/tokenizer/fixtures/tiny_qwen2_tokenizer.json",
        tmp_.file("m/tokenizer.json"));
    const char* colors[] = {"red", "green", "blue"};
    std::ofstream qa(tmp_.file("qa.jsonl"));
    for (int i = 0; i < 40; ++i)
      qa << "{\"prompt\": \"What color is box " << i << "?\", \"response\": \"Box " << i << " is "
         << colors[i % 3] << ".\"}\n";
    std::string text;
    for (int i = 0; i < 20; ++i) text += "What color is box 7? Box 7 is green. ";
    std::ofstream(tmp_.file("eval.txt")) << text;
  }
  // `lords quantize` of the model: method lords (rank 4) or rtn (block-wise NF4, the QLoRA base).
  std::string quantize(const std::string& method) {
    const std::string out = tmp_.file(method);
    const Result r = run_cli("quantize " + tmp_.file("m") + " -o " + out + " --method " + method +
                             " --block 16 --rank 4 --steps 3 --threads 2 -q");
    EXPECT_EQ(r.code, 0) << r.out;
    return out;
  }
  std::string train_args(const std::string& ckpt, const std::string& mode, const std::string& out) {
    return "finetune " + ckpt + " --data " + tmp_.file("qa.jsonl") + " --mode " + mode + " -o " +
           out + " --steps 8 --batch 4 --seq-len 40 --lr 1e-2 --warmup 1 --threads 2 --lora-rank 4";
  }
  test::TempDir tmp_;
};

TEST_F(CliFinetune, PeftOutputRunsInPerplexityAndGenerate) {
  const std::string ck = quantize("lords"), out = tmp_.file("tuned");
  Result r = run_cli(train_args(ck, "peft", out) + " --json -q");
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json j = json_of(r);
  EXPECT_TRUE(j["completed"].get<bool>());
  EXPECT_EQ(j["steps_done"], 8);
  EXPECT_LT(j["final"]["loss"].get<double>(), j["initial"]["loss"].get<double>());
  EXPECT_GT(j["trainable_params"].get<int64_t>(), 0);
  EXPECT_GT(j["tokens_per_s"].get<double>(), 0);
  r = run_cli("perplexity " + out + " --text " + tmp_.file("eval.txt") + " --ctx 32 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_GT(json_of(r)["ppl"].get<double>(), 1.0);
  r = run_cli("generate " + out + " -p \"What color is box 3?\" -n 4");
  EXPECT_EQ(r.code, 0) << r.out;
  // Progress lines (stderr) and the human summary.
  r = run_cli(train_args(ck, "peft", tmp_.file("again")) + " --log-every 4 --eval-every 4");
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* phrase : {"trainable parameters:",
                             "step  4/8  loss",
                             "tok/s",
                             "eval  4/8  held-out loss",
                             "held-out loss",
                             "wrote "})
    EXPECT_NE(r.out.find(phrase), std::string::npos) << phrase << "\n" << r.out;
}

TEST_F(CliFinetune, QloraOutputRunsInPerplexityWithItsAdapters) {
  const std::string base = quantize("rtn"), out = tmp_.file("tuned");
  Result r = run_cli(train_args(base, "qlora", out) + " --json -q");
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json trained = json_of(r);
  EXPECT_EQ(trained["lora_rank"], 4);
  EXPECT_TRUE(fs::exists(out + "/adapters.safetensors"));
  const std::string ppl_args = " --text " + tmp_.file("eval.txt") + " --ctx 32 --json";
  r = run_cli("perplexity " + out + ppl_args);
  ASSERT_EQ(r.code, 0) << r.out;
  const double tuned_ppl = json_of(r)["ppl"].get<double>();
  r = run_cli("perplexity " + base + ppl_args);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(tuned_ppl, json_of(r)["ppl"].get<double>());  // the adapters are applied
  // --eval-only on the output: the run's final held-out loss (same split, same batches).
  r = run_cli("finetune " + out + " --eval-only --data " + tmp_.file("qa.jsonl") +
              " --seq-len 40 --batch 4 --threads 2 --json -q");
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json e = json_of(r);
  EXPECT_EQ(e["mode"], "qlora");
  EXPECT_NEAR(e["final"]["loss"].get<double>(), trained["final"]["loss"].get<double>(), 1e-9);
}

TEST_F(CliFinetune, StopAtThenResumeFinishesTheRun) {
  const std::string ck = quantize("lords"), out = tmp_.file("tuned");
  Result r = run_cli(train_args(ck, "qat", out) + " --stop-at 3 -q");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("stopped after update 3"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_TRUE(fs::exists(out + ".state/state.safetensors"));
  r = run_cli(train_args(ck, "qat", out) + " -q");  // without --resume: refused
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("--resume"), std::string::npos) << r.out;
  r = run_cli(train_args(ck, "qat", out) + " --resume --json -q");
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json j = json_of(r);
  EXPECT_EQ(j["resumed_from"], 3);
  EXPECT_TRUE(j["completed"].get<bool>());
  EXPECT_TRUE(fs::exists(out + "/model.safetensors"));
  EXPECT_FALSE(fs::exists(out + ".state"));
}

TEST_F(CliFinetune, BadInputIsOneLineAndExitOne) {
  const std::string ck = quantize("lords"), out = tmp_.file("out");
  const auto fails = [&](const std::string& args, const std::string& phrase) {
    const Result r = run_cli(args);  // progress lines on: still one line
    EXPECT_EQ(r.code, 1) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(phrase), std::string::npos) << args << "\n" << r.out;
    EXPECT_LE(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    EXPECT_FALSE(fs::exists(out));
    EXPECT_FALSE(fs::exists(out + ".state"));
  };
  const std::string data = " --data " + tmp_.file("qa.jsonl") + " -o " + out;
  fails("finetune " + ck + " --data " + tmp_.file("none.jsonl") + " --mode peft -o " + out,
        "none.jsonl");
  fails("finetune " + ck + data + " --mode lora", "unknown fine-tuning mode 'lora'");
  fails("finetune " + ck + data + " --mode peft --seq-len 1", "--seq-len");
  fails("finetune " + ck + data + " --mode qlora", "needs a block-wise base");
  fails("finetune " + tmp_.file("m") + data + " --mode peft", "not a lords checkpoint");
  const Result help = run_cli("finetune --help");
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("Usage"), std::string::npos) << help.out;
}

}  // namespace
