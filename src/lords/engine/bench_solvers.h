// `lords bench-solvers`: block-wise RTN vs LoRDS (SVD init only, Adam, ALS) on large single matrices,
// with errors, wall times and ratios measured in the same run. The matrices are synthesized with a real
// layer's statistics when a model is given: W[n,k] = r_n * c_k * z_nk where the row scales r, column
// scales c and the standardized entries z are resampled from that layer (its outlier rows/columns and
// heavy tails survive; its exact values do not). Without a model, z is Student-t(4) and r, c log-normal.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lords/engine/quant_config.h"

namespace lords::engine {

struct BenchSolversRequest {
  std::vector<std::pair<int64_t, int64_t>> shapes = {{4096, 4096}, {4096, 14336}};
  std::vector<int> bits = {3, 4};
  int64_t block = 128;
  quant::CodebookKind codebook = quant::CodebookKind::NF;
  int als_steps = 20, adam_steps = 500;
  float adam_lr = 1e-3f;
  std::optional<std::string> like_model;  // model path
  std::string like_layer;                  // tensor name in that model (source naming)
  int threads = 0;
  uint32_t seed = 0;
};

struct BenchSolversRow {
  int64_t N, K, rank;
  int bits;
  std::string method;  // rtn | svd-init | adam-500 | als-20
  double rel_err, seconds;
};

std::vector<BenchSolversRow> bench_solvers(const BenchSolversRequest& req);
std::string bench_solvers_table(const std::vector<BenchSolversRow>& rows);
nlohmann::json bench_solvers_json(const std::vector<BenchSolversRow>& rows);

// The synthesized matrix (exposed for tests).
std::vector<float> synthesize_matrix(int64_t N, int64_t K, const std::vector<float>* like, int64_t like_rows,
                                     int64_t like_cols, uint32_t seed);

}  // namespace lords::engine
