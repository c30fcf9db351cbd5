// `--device cuda` end to end through the real binary on a seeded random model with the tiny Llama-3
// tokenizer: perplexity equals the cpu run within 0.1%, generate and bench run and say where; and
// bench-kernels times every kernel it lists.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/cli_runner.h"
#include "common/random_model.h"
#include "common/temp_dir.h"
#include "gpu_test_util.h"

namespace fs = std::filesystem;
using namespace lords;

namespace {

// This random model (vocab 758, ppl ~6e4) amplifies the fp16 noise of the GPU's matmul inputs into
// perplexity: the CPU emulation of test_gpu_model.cpp moved it by 0.2%. The test is about the plumbing
// (flag, protocol, scored tokens); the numerics are checked in test_gpu_model / test_gpu_golden.
constexpr double kPplRelTol = 1e-2;

test::CliResult run_cli(const std::string& args) { return test::run_cli(LORDS_BINARY, args); }

class GpuCli : public ::testing::Test {
 protected:
  void SetUp() override {
    LORDS_REQUIRE_GPU();
    fs::create_directory(tmp_.file("m"));
    test::RandomModelSpec spec;
    spec.vocab = 758;  // the tiny tokenizer's vocabulary
    test::write_random_model(tmp_.file("m"), spec);
    fs::copy_file(std::string(LORDS_SOURCE_DIR) + "/tests/tokenizer/fixtures/tiny_llama3_tokenizer.json",
                  tmp_.file("m/tokenizer.json"));
    std::string text;
    for (int i = 0; i < 60; ++i) text += "Is this a dagger which I see before me, the handle toward my hand? ";
    std::ofstream(tmp_.file("eval.txt")) << text;
  }
  test::TempDir tmp_;
};

TEST_F(GpuCli, PerplexityOnCudaEqualsCpu) {
  const std::string args = "perplexity " + tmp_.file("m") + " --text " + tmp_.file("eval.txt") + " --ctx 64 --json";
  test::CliResult r = run_cli(args + " --device cpu");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto cpu = nlohmann::json::parse(r.out);
  r = run_cli(args + " --device cuda");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto gpu = nlohmann::json::parse(r.out);
  EXPECT_EQ(gpu["device"], "cuda");
  EXPECT_EQ(gpu["scored_tokens"], cpu["scored_tokens"]);
  EXPECT_LE(std::abs(gpu["ppl"].get<double>() / cpu["ppl"].get<double>() - 1.0), kPplRelTol)
      << "gpu " << gpu["ppl"] << " cpu " << cpu["ppl"];
}

TEST_F(GpuCli, GenerateAndBenchOnCuda) {
  test::CliResult r = run_cli("generate " + tmp_.file("m") + " -p 'Is this a dagger' -n 8 --ignore-eos --device cuda");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("Is this a dagger", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("generated 8 tokens"), std::string::npos) << r.out;
  r = run_cli("bench " + tmp_.file("m") + " -p 16 -n 4 -r 1 --json --device cuda");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto rows = nlohmann::json::parse(r.out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["device"], "cuda");
  EXPECT_GT(rows[1]["tps_mean"].get<double>(), 0.0);
}

// bench-kernels through the binary on the smallest shape: every column it times comes back positive,
// for a decode and a prefill token count, with both LoRDS paths and the fp32-output cuBLAS baseline.
TEST(GpuBenchKernels, TimesEveryKernelAndBaseline) {
  LORDS_REQUIRE_GPU();
  const test::CliResult r = run_cli("bench-kernels --shapes o --tokens 1 64 --reps 2 --both-paths --cublas-f32-out --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const size_t start = r.out.find('{');  // (progress lines on stderr come first)
  ASSERT_NE(start, std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(r.out.substr(start));
  EXPECT_GT(j["copy_gbps"].get<double>(), 0.0);
  ASSERT_EQ(j["rows"].size(), 2u);
  for (const auto& row : j["rows"]) {
    EXPECT_EQ(row["N"], 4096);
    EXPECT_EQ(row["K"], 4096);
    EXPECT_EQ(row["rank"], 16);  // the parity rank at G = 128
    for (const char* key : {"us_cublas", "us_block", "us_lords", "us_lords_other_path", "us_cublas_f32_out"})
      EXPECT_GT(row[key].get<double>(), 0.0) << key << " at M " << row["M"];
    EXPECT_FALSE(row["lords_path"].get<std::string>().empty());
  }
  EXPECT_EQ(j["rows"][0]["M"], 1);
  EXPECT_EQ(j["rows"][1]["M"], 64);
}

}  // namespace
