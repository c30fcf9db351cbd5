// The PTQ pipeline over a whole model: open the source, pick the linears to quantize, quantize them
// on a pool of workers (one layer in memory per worker, streamed straight into the output file) and
// write the checkpoint directory atomically. Also used without an output to measure errors only.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lords/engine/gpu_quant.h"
#include "lords/engine/linear_quant.h"
#include "lords/engine/quant_config.h"

namespace lords::engine {

struct ModelQuantReport {
  std::string source;
  QuantConfig config;
  QuantDevice device = QuantDevice::Cpu;
  std::vector<LinearStats> layers;  // in model order
  double seconds = 0;
  std::string calibration;          // calibration text and token count, empty for weight-only
  int64_t weights = 0;              // quantized weight count
  double scale_floats = 0;          // stored scale parameters

  double total_rel_err() const;     // sqrt(sum err^2 / sum ||W||^2)
  double total_init_rel_err() const;
  double total_output_rel_err() const;  // sqrt(sum tr(E H E^T) / sum tr(W H W^T)), calibrated runs
  double bits_per_weight() const;  // codes + stored scales, over the quantized linears
  nlohmann::json to_json() const;
  std::string table() const;        // human-readable, one row per layer plus the total
};

// Input statistics of each linear from a calibration run: H = E[x x^T] (K, K) by internal layer name
// (layers that read the same input share one matrix).
struct CalibrationStats {
  std::map<std::string, std::shared_ptr<const std::vector<double>>> hessians;
  std::string text;    // what the statistics were collected on (named in reports)
  int64_t tokens = 0;
};

struct QuantizeRequest {
  std::string source;
  QuantConfig config;
  std::optional<std::string> output;  // no output: measure only
  bool overwrite = false;
  bool progress = true;
  const CalibrationStats* calibration = nullptr;  // required by objectives act and gptq
  // Cuda: every linear is uploaded, solved on the GPU and downloaded, config.jobs (default 2) at once,
  // each job with its own device buffers (gpu_quant.h); objective weight only.
  QuantDevice device = QuantDevice::Cpu;
};

ModelQuantReport quantize_model(const QuantizeRequest& request);

}  // namespace lords::engine
