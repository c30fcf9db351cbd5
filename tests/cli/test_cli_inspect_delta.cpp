// `lords inspect --delta`: spectra of a LoRDS PEFT checkpoint and QLoRA adapters against one base,
// as JSON and as an SVG written atomically; bad input is one line and exit 1; plain `inspect` of a
// checkpoint is unchanged.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/cli_runner.h"
#include "common/temp_dir.h"
#include "common/tiny_checkpoint.h"

namespace fs = std::filesystem;
using namespace lords;

namespace {

constexpr const char* kLayer = "model.layers.0.mlp.up_proj.weight";
constexpr int64_t N = 160, K = 64, R = 4;

test::CliResult lords_cli(const std::string& args) {
  return test::run_cli(LORDS_BINARY, args);
}

class CliDelta : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* d : {"base", "peft", "qlora", "rtn"}) fs::create_directory(tmp_.file(d));
    const std::vector<uint8_t> codes(N * K, 15);  // level 1.0 everywhere
    const std::vector<float> B = test::uniform_floats(N * R, 1), A = test::uniform_floats(R * K, 2);
    std::vector<float> B2 = B;
    for (int64_t i = 0; i < N; ++i)
      B2[i * R] += 0.5f * static_cast<float>(i % 7);  // rank-1 change of column 0
    test::write_tiny_checkpoint(tmp_.file("base"),
                                {test::tiny_lords_layer(kLayer, N, K, codes, B, A, R)});
    test::write_tiny_checkpoint(tmp_.file("peft"),
                                {test::tiny_lords_layer(kLayer, N, K, codes, B2, A, R)});
    test::write_tiny_checkpoint(tmp_.file("qlora"),
                                {test::tiny_lords_layer(kLayer, N, K, codes, B, A, R)});
    test::write_lora_adapters(
        tmp_.file("qlora"),
        {kLayer, test::uniform_floats(2 * K, 3), test::uniform_floats(N * 2, 4), N, K, 2, 16.0});
  }
  test::TempDir tmp_;
};

TEST_F(CliDelta, JsonTableAndPlot) {
  const std::string args =
      "inspect --delta " + tmp_.file("base") + " " + tmp_.file("peft") + " " + tmp_.file("qlora") +
      " --layer blk.0.ffn_up --label LoRDS --label QLoRA --plot " + tmp_.file("spectrum.svg");
  test::CliResult r = lords_cli(args + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["layer"], kLayer);
  ASSERT_EQ(j["tuned"].size(), 2u);
  EXPECT_EQ(j["tuned"][0]["label"], "LoRDS");
  EXPECT_EQ(j["tuned"][0]["kind"], "lords");
  EXPECT_EQ(j["tuned"][0]["numerical_rank"], 1);
  EXPECT_EQ(j["tuned"][1]["kind"], "lora");
  EXPECT_EQ(j["tuned"][1]["numerical_rank"], 2);
  EXPECT_EQ(j["tuned"][1]["top_singular_values"].size(), 10u);
  EXPECT_EQ(j["tuned"][1]["singular_values"].size(), static_cast<size_t>(K));
  EXPECT_EQ(j["plot"], tmp_.file("spectrum.svg"));
  EXPECT_TRUE(fs::exists(tmp_.file("spectrum.svg")));
  for (const auto& e : fs::directory_iterator(tmp_.path()))  // written via temp + rename
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
  r = lords_cli(args);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("LoRDS"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("num.rank"), std::string::npos) << r.out;
  // Plain inspect of a checkpoint still works.
  r = lords_cli("inspect " + tmp_.file("base") + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out)["layers"].size(), 1u);
}

TEST_F(CliDelta, BadInputIsOneLine) {
  auto expect_fail = [](const std::string& args, const std::string& phrase) {
    const test::CliResult r = lords_cli(args);
    EXPECT_EQ(r.code, 1) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(phrase), std::string::npos) << args << "\n" << r.out;
    EXPECT_LE(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  };
  const std::string pair = " --delta " + tmp_.file("base") + " " + tmp_.file("peft");
  expect_fail("inspect" + pair, "needs --layer");
  expect_fail("inspect" + pair + " --layer blk.9.ffn_up", "no quantized layer 'blk.9.ffn_up'");
  expect_fail("inspect" + pair + " --layer blk.0.ffn_up --label a --label b",
              "2 --label given for 1 TUNED");
  expect_fail("inspect " + tmp_.file("base") + " --layer x", "go with --delta");
  expect_fail("inspect", "give a checkpoint directory");
  expect_fail(
      "inspect --delta " + tmp_.file("base") + " " + tmp_.file("nope") + " --layer blk.0.ffn_up",
      "nope");
  expect_fail("inspect" + pair + " --layer blk.0.ffn_up --plot /nonexistent/dir/x.svg",
              "/nonexistent/dir/x.svg");
}

}  // namespace
