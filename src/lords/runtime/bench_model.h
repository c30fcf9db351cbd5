// `lords bench`, llama-bench style: prompt processing (pp: one forward of N tokens) and text generation
// (tg: N single-token forwards from the cache) throughput in tokens/s over repetitions, mean ± sd.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lords/runtime/causal_lm.h"

namespace lords::runtime {

struct BenchModelOptions {
  std::vector<std::string> models;
  int64_t pp = 512, tg = 128;
  int reps = 3;
  int threads = 0;
  Device device = Device::Cpu;
};

struct BenchModelRow {
  std::string model, test;  // test: "pp512" / "tg128"
  std::string weights;      // "fp32 (dense)", "lords nf4 G64", ...
  std::string device;       // "cpu" | "cuda"
  double mean_tps = 0, sd_tps = 0;
};

std::vector<BenchModelRow> bench_models(const BenchModelOptions& opt);
std::string bench_models_table(const std::vector<BenchModelRow>& rows);
nlohmann::json bench_models_json(const std::vector<BenchModelRow>& rows);

}  // namespace lords::runtime
