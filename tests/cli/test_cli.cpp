// The real `lords` binary: subcommands work end to end, bad input gives one clear line and exit 1.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
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

Result lords_cli(const std::string& args) { return test::run_cli(LORDS_BINARY, args); }

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directory(tmp_.file("src"));
    test::write_random_model(tmp_.file("src"), {});
  }
  test::TempDir tmp_;
};

TEST_F(Cli, QuantizeInspectDequantize) {
  Result r = lords_cli("quantize " + tmp_.file("src") + " -o " + tmp_.file("ck") + " --block 16 --steps 3 -q");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("blk.1.ffn_down.weight"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("total: 14 layers"), std::string::npos) << r.out;
  r = lords_cli("inspect " + tmp_.file("ck") + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["layers"].size(), 14u);
  EXPECT_EQ(j["codebook"]["name"], "nf4");
  EXPECT_GT(j["bits_per_weight"].get<double>(), 4.0);
  r = lords_cli("dequantize " + tmp_.file("ck") + " -o " + tmp_.file("plain") + " --dtype bf16");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(fs::exists(tmp_.file("plain/model.safetensors")));
}

TEST_F(Cli, QuantizeJsonWithoutOutputWritesNothing) {
  const Result r = lords_cli("quantize " + tmp_.file("src") + " --method rtn --bits 3 --block 32 --json -q");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["settings"]["method"], "rtn");
  EXPECT_EQ(j["layers"].size(), 14u);
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp_.path()), fs::directory_iterator{}), 1);
}

TEST_F(Cli, BadInputIsOneLineAndExitOne) {
  auto expect_fail = [](const std::string& args, const std::string& phrase) {
    const Result r = lords_cli(args);
    EXPECT_EQ(r.code, 1) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(phrase), std::string::npos) << args << "\n" << r.out;
    EXPECT_LE(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  };
  expect_fail("quantize /nonexistent/model -q", "/nonexistent/model");
  expect_fail("quantize " + tmp_.file("src") + " --bits 7 -q", "--bits");
  expect_fail("quantize " + tmp_.file("src") + " --solver sgd -q", "sgd");
  expect_fail("inspect " + tmp_.file("src"), "not a lords checkpoint");
  // Truncate the weights: the error names the file.
  fs::resize_file(tmp_.file("src/model.safetensors"), 200);
  expect_fail("quantize " + tmp_.file("src") + " -q", "model.safetensors");
  EXPECT_FALSE(fs::exists(tmp_.file("out")));
}

#if !defined(LORDS_HAVE_CUDA)
// A build without CUDA still knows --device cuda, and says in one line why it cannot run it.
TEST_F(Cli, DeviceCudaWithoutCudaBuildIsOneLine) {
  for (const std::string& args : {"quantize " + tmp_.file("src") + " --device cuda -q", std::string("bench-quant-gpu")}) {
    const Result r = lords_cli(args);
    EXPECT_EQ(r.code, 1) << args << "\n" << r.out;
    EXPECT_NE(r.out.find("built without CUDA"), std::string::npos) << args << "\n" << r.out;
    EXPECT_LE(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  }
}
#endif

TEST(CliHelp, EverySubcommandHasHelp) {
  for (const char* sub : {"quantize", "inspect", "dequantize", "convert", "bench-solvers", "perplexity", "generate",
                          "bench", "bench-ppl", "bench-quant-gpu"}) {
    const Result r = lords_cli(std::string(sub) + " --help");
    EXPECT_EQ(r.code, 0) << sub;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << r.out;
  }
}

}  // namespace
