// `lords bench-ppl`: the quality table users judge quantizers by. One run loads the model, measures
// the unquantized perplexity, collects calibration statistics once (on a text disjoint from the
// evaluation text), then for every bit width x block size x method quantizes, reloads the checkpoint
// through the runtime (the real qmatmul path) and measures perplexity with the llama.cpp protocol.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lords/runtime/causal_lm.h"

namespace lords::runtime {

struct BenchPplOptions {
  std::string model, eval_text, calib_text;
  std::vector<int> bits = {4, 3, 2};
  std::vector<int64_t> blocks = {128, 64};
  // rtn | gptq | lords (weight-only ALS) | lords-adam | lords-act | lords-gptq
  std::vector<std::string> methods = {"rtn", "gptq", "lords", "lords-act", "lords-gptq"};
  int64_t ctx = 512, chunks = 8;
  int64_t calib_tokens = 16384;
  int steps = -1;  // -1: each solver's default
  int threads = 0;
  bool progress = true;
  Device device = Device::Cpu;  // where perplexity runs (calibration always runs on the cpu model)
};

struct BenchPplRow {
  int bits = 16;
  int64_t block = 0;
  std::string method;
  double bits_per_weight = 16, ppl = 0, ppl_se = 0, weight_rel_err = 0, quantize_s = 0, eval_s = 0;
};

struct BenchPplResult {
  std::string eval_desc, calib_desc, protocol;
  std::vector<BenchPplRow> rows;  // rows[0] = the unquantized model
};

BenchPplResult bench_ppl(const BenchPplOptions& opt);
std::string bench_ppl_table(const BenchPplResult& r);
nlohmann::json bench_ppl_json(const BenchPplResult& r);

}  // namespace lords::runtime
