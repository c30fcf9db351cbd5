#include "lords/engine/quantize_model.h"

#include <chrono>
#include <cmath>
#include <regex>

#include "lords/core/atomic_output.h"
#include "lords/core/error.h"
#include "lords/core/parallel.h"
#include "lords/core/progress.h"
#include "lords/engine/checkpoint.h"
#include "lords/engine/write_support.h"
#include "lords/io/model_source.h"
#include "lords/io/safetensors.h"
#include "lords/model/weight_table.h"

namespace lords::engine {
namespace {

constexpr int kGpuJobs = 2;  // default layers in flight with --device cuda

struct Plan {
  std::vector<model::ResolvedWeight> quantized;  // linears to quantize
  std::vector<model::ResolvedWeight> plain;      // everything else, copied through
};

Plan make_plan(const io::ModelSource& src, const model::ModelConfig& mc, const QuantConfig& config) {
  const std::regex re(config.layers);
  Plan plan;
  for (model::ResolvedWeight& w : model::resolve_weights(src, mc)) {
    const bool linear = w.spec.role == model::WeightRole::Linear && w.spec.shape.size() == 2;
    if (linear && std::regex_search(w.spec.internal, re)) plan.quantized.push_back(std::move(w));
    else plan.plain.push_back(std::move(w));
  }
  LORDS_CHECK(!plan.quantized.empty(), ErrorKind::Usage, "{}: --layers '{}' matches no linear layer", src.path,
              config.layers);
  return plan;
}

// A quantized linear with only its shape fields set, to declare its tensors before any work is done.
QuantizedLinear shape_of(const model::ResolvedWeight& w, const QuantConfig& c) {
  QuantizedLinear q;
  q.method = c.method;
  q.N = w.spec.shape[0];
  q.K = w.spec.shape[1];
  q.rtn.G = c.block;
  q.lowrank.r = c.rank > 0 ? std::min<int64_t>(c.rank, std::min(q.N, q.K)) : quant::parity_rank(q.N, q.K, c.block);
  return q;
}

nlohmann::json layer_entry(const QuantizedLinear& q) {
  nlohmann::json e;
  e["shape"] = {q.N, q.K};
  if (q.method == Method::Rtn) e["block"] = q.rtn.G;
  else e["rank"] = q.lowrank.r;
  return e;
}

}  // namespace

double ModelQuantReport::total_rel_err() const {
  double e = 0, w = 0;
  for (const auto& l : layers) e += l.err_sq, w += l.w_sq;
  return w > 0 ? std::sqrt(e / w) : 0;
}

double ModelQuantReport::total_init_rel_err() const {
  double e = 0, w = 0;
  for (const auto& l : layers) e += l.init_err_sq, w += l.w_sq;
  return w > 0 ? std::sqrt(e / w) : 0;
}

double ModelQuantReport::total_output_rel_err() const {
  double e = 0, w = 0;
  for (const auto& l : layers) e += l.out_err_sq, w += l.out_sq;
  return w > 0 ? std::sqrt(e / w) : 0;
}

double ModelQuantReport::bits_per_weight() const {
  const double scale_bits = 8.0 * static_cast<double>(dtype_size(config.scale_dtype));
  return weights > 0 ? (static_cast<double>(weights) * config.bits + scale_floats * scale_bits) /
                           static_cast<double>(weights)
                     : 0;
}

ModelQuantReport quantize_model(const QuantizeRequest& req) {
  const auto start = std::chrono::steady_clock::now();
  const QuantConfig& config = req.config;
  config.validate();
  const bool gpu = req.device == QuantDevice::Cuda;
  if (gpu) require_gpu_quantize(config, "quantize --device cuda");
  io::ModelSource src = io::open_model(req.source);
  const model::ModelConfig mc = model::parse_model_config(src.config, src.config_path);
  const Plan plan = make_plan(src, mc, config);
  LORDS_CHECK(config.objective == Objective::Weight || req.calibration != nullptr, ErrorKind::Usage,
              "--objective {} needs calibration text (--calib FILE)", objective_name(config.objective));
  const quant::Codebook cb = quant::make_codebook(config.codebook, config.bits);

  const int threads = config.threads > 0 ? config.threads : default_threads();
  // On the GPU a second job overlaps one layer's host work (load, pack, write) with another's solve;
  // more would only add device memory.
  const int auto_jobs = gpu ? kGpuJobs : threads;
  const int jobs = config.jobs > 0 ? config.jobs : std::min<int>(auto_jobs, static_cast<int>(plan.quantized.size()));
  const int inner = std::max(1, threads / std::max(1, jobs));
  std::vector<std::unique_ptr<GpuLinearQuantizer>> gpu_quantizers(static_cast<size_t>(gpu ? jobs : 0));

  std::optional<AtomicDir> out_dir;
  std::optional<io::SafetensorsWriter> writer;
  nlohmann::json layer_table = nlohmann::json::object();
  if (req.output) {
    out_dir.emplace(*req.output, req.overwrite ? AtomicDir::Existing::Replace : AtomicDir::Existing::Refuse);
    writer.emplace(out_dir->file(kWeightsFile));
    for (const auto& w : plan.quantized) {
      const QuantizedLinear q = shape_of(w, config);
      layer_table[w.spec.hf] = layer_entry(q);
      for (const StoredTensor& t : quantized_tensors(w.spec.hf, q, config.bits, config.scale_dtype))
        writer->declare(t.name, t.dtype, t.shape);
    }
    declare_plain_tensors(src, plan.plain, &*writer);
    writer->set_metadata(checkpoint_metadata(config, cb, layer_table, req.source));
    writer->begin();
  }

  ModelQuantReport report;
  report.source = req.source;
  report.config = config;
  report.device = req.device;
  if (req.calibration != nullptr)
    report.calibration = fmt::format("{} ({} tokens)", req.calibration->text, req.calibration->tokens);
  report.layers.resize(plan.quantized.size());
  Progress progress("quantize", static_cast<int64_t>(plan.quantized.size()), req.progress);
  parallel_for(static_cast<int64_t>(plan.quantized.size()), jobs, [&](int64_t i, int worker) {
    set_inner_threads(inner);
    const model::ResolvedWeight& w = plan.quantized[static_cast<size_t>(i)];
    const HostTensor W = model::load_weight(src, w);
    LinearStats& stats = report.layers[static_cast<size_t>(i)];
    stats.name = w.spec.internal;
    const std::vector<double>* H = nullptr;
    if (req.calibration != nullptr) {
      auto it = req.calibration->hessians.find(w.spec.internal);
      LORDS_CHECK(it != req.calibration->hessians.end(), ErrorKind::Usage,
                  "[quantize] no calibration statistics for {} (calibration covers the decoder linears only)",
                  w.spec.internal);
      H = it->second.get();
    }
    QuantizedLinear q;
    if (gpu) {
      std::unique_ptr<GpuLinearQuantizer>& gq = gpu_quantizers[static_cast<size_t>(worker)];
      if (!gq) gq = std::make_unique<GpuLinearQuantizer>();  // created on its worker's thread
      q = gq->quantize(W.data.data(), W.shape[0], W.shape[1], config, cb, &stats);
    } else {
      q = quantize_linear(W.data.data(), W.shape[0], W.shape[1], config, cb, &stats, H);
    }
    if (writer) {
      const auto tensors = quantized_tensors(w.spec.hf, q, config.bits, config.scale_dtype);
      const auto bytes = quantized_bytes(q, config.bits, config.scale_dtype);
      for (size_t t = 0; t < tensors.size(); ++t) writer->write(tensors[t].name, bytes[t].data(), bytes[t].size());
    }
    progress.tick(w.spec.internal);
  });
  progress.finish();
  set_inner_threads(threads);

  for (const auto& l : report.layers) {
    report.weights += l.N * l.K;
    report.scale_floats += l.scale_floats;
  }
  if (writer) {
    write_plain_tensors(src, plan.plain, &*writer);
    writer->commit();
    write_model_files(src, config, out_dir->tmp_path());
    out_dir->commit();
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace lords::engine
