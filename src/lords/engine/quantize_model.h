// The PTQ pipeline over a whole model: open the source, pick the linears to quantize, quantize them
// on a pool of workers (one layer in memory per worker, streamed straight into the output file) and
// write the checkpoint directory atomically. Also used without an output to measure errors only.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lords/engine/linear_quant.h"
#include "lords/engine/quant_config.h"

namespace lords::engine {

struct ModelQuantReport {
  std::string source;
  QuantConfig config;
  std::vector<LinearStats> layers;  // in model order
  double seconds = 0;
  int64_t weights = 0;              // quantized weight count
  double scale_floats = 0;          // stored scale parameters

  double total_rel_err() const;     // sqrt(sum err^2 / sum ||W||^2)
  double total_init_rel_err() const;
  double bits_per_weight() const;  // codes + stored scales, over the quantized linears
  nlohmann::json to_json() const;
  std::string table() const;        // human-readable, one row per layer plus the total
};

struct QuantizeRequest {
  std::string source;
  QuantConfig config;
  std::optional<std::string> output;  // no output: measure only
  bool overwrite = false;
  bool progress = true;
};

ModelQuantReport quantize_model(const QuantizeRequest& request);

}  // namespace lords::engine
