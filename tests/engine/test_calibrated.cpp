// Calibration-aware quantization through the whole-model pipeline with given input statistics:
// GPTQ beats RTN and LoRDS-GPTQ beats weight-only LoRDS on the output error they target.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "common/random_model.h"
#include "common/temp_dir.h"
#include "lords/core/error.h"
#include "lords/engine/quantize_model.h"
#include "lords/io/model_source.h"
#include "lords/model/weight_table.h"

namespace fs = std::filesystem;
using namespace lords;

namespace {

// Correlated second moments per distinct input width, shared like a real model's (q/k/v, gate/up).
engine::CalibrationStats random_stats(const std::string& src, uint32_t seed) {
  io::ModelSource s = io::open_model(src);
  const model::ModelConfig mc = model::parse_model_config(s.config, s.config_path);
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::map<int64_t, std::shared_ptr<const std::vector<double>>> by_width;
  engine::CalibrationStats stats;
  stats.text = "synthetic";
  stats.tokens = 1;
  for (const auto& w : model::resolve_weights(s, mc)) {
    if (w.spec.role != model::WeightRole::Linear) continue;
    const int64_t K = w.spec.shape[1];
    if (!by_width.count(K)) {
      const int64_t T = 3 * K;
      std::vector<double> X(static_cast<size_t>(T * K)), H(static_cast<size_t>(K * K), 0.0);
      std::vector<double> energy(static_cast<size_t>(K));
      for (double& e : energy) e = std::exp(normal(rng));
      for (int64_t t = 0; t < T; ++t) {
        const double common = normal(rng);
        for (int64_t k = 0; k < K; ++k) X[static_cast<size_t>(t * K + k)] = energy[static_cast<size_t>(k)] * (normal(rng) + common);
      }
      for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < K; ++i)
          for (int64_t j = 0; j < K; ++j)
            H[static_cast<size_t>(i * K + j)] += X[static_cast<size_t>(t * K + i)] * X[static_cast<size_t>(t * K + j)] / T;
      by_width[K] = std::make_shared<const std::vector<double>>(std::move(H));
    }
    stats.hessians[w.spec.internal] = by_width[K];
  }
  return stats;
}

double output_err(const std::string& src, engine::QuantConfig c, const engine::CalibrationStats& stats) {
  engine::QuantizeRequest req;
  req.source = src;
  req.config = c;
  req.progress = false;
  req.calibration = &stats;
  return engine::quantize_model(req).total_output_rel_err();
}

TEST(Calibrated, GptqAndLordsGptqReduceOutputError) {
  test::TempDir tmp;
  fs::create_directory(tmp.file("src"));
  test::write_random_model(tmp.file("src"), {});
  const engine::CalibrationStats stats = random_stats(tmp.file("src"), 3);
  engine::QuantConfig c;
  c.bits = 3;
  c.block = 16;
  c.steps = 6;
  c.threads = 2;
  c.method = engine::Method::Rtn;
  const double rtn = output_err(tmp.file("src"), c, stats);
  c.objective = engine::Objective::Gptq;
  const double gptq = output_err(tmp.file("src"), c, stats);
  c.method = engine::Method::Lords;
  c.objective = engine::Objective::Weight;
  const double lords_w = output_err(tmp.file("src"), c, stats);
  c.objective = engine::Objective::Act;
  const double lords_act = output_err(tmp.file("src"), c, stats);
  c.objective = engine::Objective::Gptq;
  const double lords_gptq = output_err(tmp.file("src"), c, stats);
  EXPECT_LT(gptq, rtn);
  EXPECT_LT(lords_act, lords_w);
  EXPECT_LT(lords_gptq, lords_w);
  EXPECT_LT(lords_gptq, gptq);
}

TEST(Calibrated, ObjectiveWithoutCalibrationIsAUsageError) {
  test::TempDir tmp;
  fs::create_directory(tmp.file("src"));
  test::write_random_model(tmp.file("src"), {});
  engine::QuantizeRequest req;
  req.source = tmp.file("src");
  req.config.objective = engine::Objective::Gptq;
  req.progress = false;
  try {
    engine::quantize_model(req);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--calib"), std::string::npos) << e.what();
  }
  req.config.method = engine::Method::Rtn;
  req.config.objective = engine::Objective::Act;
  EXPECT_THROW(engine::quantize_model(req), Error);
}

}  // namespace
