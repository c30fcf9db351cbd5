// `lords quantize --device cuda` and `lords bench-quant-gpu` through the real binary: with a GPU the
// results equal the CPU run's within the solver tolerance and the checkpoint loads; without one (or with
// an objective the GPU does not implement) the command fails with one clear line.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "common/cli_runner.h"
#include "common/random_model.h"
#include "common/temp_dir.h"
#include "gpu_test_util.h"

namespace fs = std::filesystem;
using namespace lords;

namespace {

test::CliResult run_cli(const std::string& args) { return test::run_cli(LORDS_BINARY, args); }

size_t lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

class GpuQuantCli : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directory(tmp_.file("src"));
    test::write_random_model(tmp_.file("src"), {});
  }
  std::string src() const { return tmp_.file("src"); }
  test::TempDir tmp_;
};

TEST_F(GpuQuantCli, WithoutGpuFailsWithOneLine) {
  if (cuda::gpu_available()) GTEST_SKIP() << "a GPU is present";
  const std::string quantize = "quantize " + src() + " --device cuda -q";
  for (const std::string& args : {quantize, std::string("bench-quant-gpu --layers 1")}) {
    const test::CliResult r = run_cli(args);
    EXPECT_EQ(r.code, 1) << args << "\n" << r.out;
    EXPECT_NE(r.out.find("needs a CUDA GPU"), std::string::npos) << args << "\n" << r.out;
    EXPECT_LE(lines(r.out), 1u) << r.out;
  }
  EXPECT_FALSE(fs::exists(tmp_.file("out")));
}

// Checked before any GPU or calibration work, so it holds with or without a GPU.
TEST_F(GpuQuantCli, CalibratedObjectivesAreUnsupported) {
  for (const char* objective : {"act", "gptq"}) {
    const std::string args = "quantize " + src() + " --device cuda --objective " + objective + " -q";
    const test::CliResult r = run_cli(args);
    EXPECT_EQ(r.code, 1) << args << "\n" << r.out;
    EXPECT_NE(r.out.find("no GPU implementation"), std::string::npos) << args << "\n" << r.out;
    EXPECT_LE(lines(r.out), 1u) << r.out;
  }
  const test::CliResult r = run_cli("quantize " + src() + " --device tpu -q");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("tpu"), std::string::npos) << r.out;
}

nlohmann::json quantize_json(const std::string& args) {
  const test::CliResult r = run_cli(args + " --json -q");
  EXPECT_EQ(r.code, 0) << args << "\n" << r.out;
  return r.code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json();
}

TEST_F(GpuQuantCli, LordsOnCudaMatchesCpuAndWritesACheckpoint) {
  LORDS_REQUIRE_GPU();
  for (const std::string solver : {"als", "adam"}) {
    const std::string args = "quantize " + src() + " --block 16 --solver " + solver;
    const nlohmann::json cpu = quantize_json(args);
    const nlohmann::json gpu = quantize_json(args + " --device cuda -o " + tmp_.file("ck_" + solver));
    ASSERT_FALSE(cpu.is_null() || gpu.is_null());
    EXPECT_EQ(gpu["device"], "cuda");
    EXPECT_EQ(gpu["layers"].size(), cpu["layers"].size());
    const double e_cpu = cpu["total_rel_err"].get<double>(), e_gpu = gpu["total_rel_err"].get<double>();
    EXPECT_NEAR(e_gpu, e_cpu, 0.01 * e_cpu) << solver;
    EXPECT_NEAR(gpu["total_init_rel_err"].get<double>(), cpu["total_init_rel_err"].get<double>(),
                1e-4 * cpu["total_init_rel_err"].get<double>());
    test::CliResult r = run_cli("inspect " + tmp_.file("ck_" + solver) + " --json");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(nlohmann::json::parse(r.out)["layers"].size(), gpu["layers"].size());
    r = run_cli("dequantize " + tmp_.file("ck_" + solver) + " -o " + tmp_.file("plain_" + solver));
    EXPECT_EQ(r.code, 0) << r.out;
  }
}

TEST_F(GpuQuantCli, RtnOnCudaEqualsCpu) {
  LORDS_REQUIRE_GPU();
  const std::string args = "quantize " + src() + " --method rtn --bits 3 --block 32";
  const nlohmann::json cpu = quantize_json(args);
  const nlohmann::json gpu = quantize_json(args + " --device cuda --jobs 3");
  ASSERT_FALSE(cpu.is_null() || gpu.is_null());
  EXPECT_NEAR(gpu["total_rel_err"].get<double>(), cpu["total_rel_err"].get<double>(),
              1e-6 * cpu["total_rel_err"].get<double>());
}

TEST_F(GpuQuantCli, BenchQuantGpuRunsOneLayer) {
  LORDS_REQUIRE_GPU();
  const test::CliResult r = run_cli("bench-quant-gpu --layers 1 --steps 2 --compare 96x256 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["linears"], 7);
  EXPECT_EQ(j["shapes"].size(), 7u);
  EXPECT_GT(j["mean_rel_err"].get<double>(), 0.0);
  EXPECT_LT(j["mean_rel_err"].get<double>(), 0.2);
  const double cpu = j["compare"]["cpu_rel_err"].get<double>(), gpu = j["compare"]["gpu_rel_err"].get<double>();
  EXPECT_NEAR(gpu, cpu, 0.01 * cpu);
}

}  // namespace
