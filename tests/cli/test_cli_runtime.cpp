// The runtime commands of the real binary on a seeded random model carrying a real (tiny Llama-3-style)
// tokenizer: perplexity, generate, bench, calibrated quantize; bad input gives one line and exit 1, and
// so does `--device cuda` where no GPU is usable (tests/cuda/test_gpu_cli.cpp covers it where one is).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/cli_runner.h"
#include "common/random_model.h"
#include "common/temp_dir.h"
#include "lords/runtime/load_model.h"

namespace fs = std::filesystem;
using namespace lords;

namespace {

using Result = test::CliResult;

Result run_cli(const std::string& args) { return test::run_cli(LORDS_BINARY, args); }

// The command fails with exit 1 and one line holding `phrase`.
void expect_fail(const std::string& args, const std::string& phrase) {
  const Result r = run_cli(args);
  EXPECT_EQ(r.code, 1) << args << "\n" << r.out;
  EXPECT_NE(r.out.find(phrase), std::string::npos) << args << "\n" << r.out;
  EXPECT_LE(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
}

class CliRuntime : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directory(tmp_.file("m"));
    test::RandomModelSpec spec;
    spec.vocab = 758;  // the tiny tokenizer's vocabulary
    test::write_random_model(tmp_.file("m"), spec);
    fs::copy_file(std::string(LORDS_SOURCE_DIR) + "/tests/tokenizer/fixtures/tiny_llama3_tokenizer.json",
                  tmp_.file("m/tokenizer.json"));
    std::string text;
    for (int i = 0; i < 60; ++i) text += "Is this a dagger which I see before me, the handle toward my hand? ";
    std::ofstream(tmp_.file("eval.txt")) << text;
    std::ofstream(tmp_.file("calib.txt")) << "Out, out, brief candle! Life's but a walking shadow, a poor player. " << text;
  }
  test::TempDir tmp_;
};

TEST_F(CliRuntime, PerplexityOfDenseAndQuantizedModel) {
  Result r = run_cli("perplexity " + tmp_.file("m") + " --text " + tmp_.file("eval.txt") + " --ctx 64 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto dense = nlohmann::json::parse(r.out);
  EXPECT_GT(dense["ppl"].get<double>(), 1.0);
  EXPECT_EQ(dense["protocol"], "llama.cpp chunks of 64 tokens, second half scored");
  r = run_cli("quantize " + tmp_.file("m") + " -o " + tmp_.file("q") + " --block 16 --steps 3 -q");
  ASSERT_EQ(r.code, 0) << r.out;
  r = run_cli("perplexity " + tmp_.file("q") + " --text " + tmp_.file("eval.txt") + " --ctx 64 --json --kl-base " +
              tmp_.file("m"));
  ASSERT_EQ(r.code, 0) << r.out;
  const auto q = nlohmann::json::parse(r.out);
  EXPECT_GT(q["kl"].get<double>(), 0.0);
  EXPECT_GT(q["top1_agreement"].get<double>(), 0.0);
  EXPECT_EQ(q["scored_tokens"], dense["scored_tokens"]);
}

TEST_F(CliRuntime, GenerateAndBench) {
  Result r = run_cli("generate " + tmp_.file("m") + " -p 'Is this a dagger' -n 8 --ignore-eos");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("Is this a dagger", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("generated 8 tokens"), std::string::npos) << r.out;
  r = run_cli("bench " + tmp_.file("m") + " -p 16 -n 4 -r 1 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out).size(), 2u);
}

TEST_F(CliRuntime, CalibratedQuantizeNamesItsCalibrationText) {
  const Result r = run_cli("quantize " + tmp_.file("m") + " --block 16 --bits 3 --objective gptq --calib " +
                           tmp_.file("calib.txt") + " --calib-ctx 64 --calib-tokens 256 --json -q");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_NE(j["calibration"].get<std::string>().find("calib.txt"), std::string::npos);
  EXPECT_GT(j["total_output_rel_err"].get<double>(), 0.0);
}

TEST_F(CliRuntime, BadInputIsOneLineAndExitOne) {
  std::ofstream(tmp_.file("bad.txt")) << "caf\xc3(";
  expect_fail("perplexity " + tmp_.file("m") + " --text " + tmp_.file("bad.txt"), "not valid UTF-8 at byte 3");
  expect_fail("perplexity " + tmp_.file("m") + " --text " + tmp_.file("eval.txt") + " --ctx 100000",
              "exceeds the model's maximum context");
  expect_fail("generate " + tmp_.file("m") + " -p hi -n 100000", "exceeds the model's maximum context");
  expect_fail("quantize " + tmp_.file("m") + " --objective gptq -q", "--calib");
  expect_fail("perplexity " + tmp_.file("m") + " --text " + tmp_.file("eval.txt") + " --device tpu",
              "--device must be cpu or cuda, got 'tpu'");
  // A tokenizer of an unsupported type.
  nlohmann::json wordpiece = {{"model", {{"type", "WordPiece"}, {"vocab", {{"a", 0}}}}}};
  std::ofstream(tmp_.file("m/tokenizer.json")) << wordpiece.dump();
  expect_fail("perplexity " + tmp_.file("m") + " --text " + tmp_.file("eval.txt"), "WordPiece");
}

TEST_F(CliRuntime, DeviceCudaWithoutAGpuIsOneLineAndExitOne) {
  if (runtime::device_available(runtime::Device::Cuda)) GTEST_SKIP() << "a GPU is usable here";
  const std::string m = tmp_.file("m"), text = tmp_.file("eval.txt");
  for (const std::string& args :
       {"perplexity " + m + " --text " + text + " --ctx 64", "generate " + m + " -p hi -n 2",
        "bench " + m + " -p 4 -n 2 -r 1", "bench-ppl " + m + " --text " + text + " --methods rtn --bits 4"})
    expect_fail(args + " --device cuda", "[--device cuda]");
}

}  // namespace
