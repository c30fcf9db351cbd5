// bench-quant-gpu, the run: seeded Llama-3-8B-shaped weights generated on the GPU, one linear at a time
// into the quantizer's own weight buffer, each quantized with LoRDS exactly as `quantize --device cuda`
// would (parity rank, f16 scales, final Q-step against the rounded scale) and its results downloaded.
// Times are host wall clock around each call (every call ends synchronized).
#include <chrono>
#include <cmath>

#include "lords/core/error.h"
#include "lords/core/parallel.h"
#include "lords/cuda/cuda_check.h"
#include "lords/cuda/device.h"
#include "lords/cuda/quant/gpu_quantizer.h"
#include "lords/cuda/quant/random_weights.h"
#include "lords/engine/bench_quant_gpu.h"
#include "lords/engine/bench_solvers.h"
#include "lords/engine/gpu_quant.h"
#include "lords/engine/linear_quant.h"
#include "lords/io/model_source.h"

namespace lords::engine {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

QuantConfig lords_config(const BenchQuantGpuRequest& req) {
  QuantConfig c;
  c.method = Method::Lords;
  c.bits = req.bits;
  c.codebook = req.codebook;
  c.block = req.block;
  c.solver = req.solver;
  c.steps = req.steps;
  c.lr = req.lr;
  c.scale_dtype = DType::F16;
  c.validate();
  return c;
}

// One matrix through quantize_linear (CPU) and GpuLinearQuantizer with the same settings.
BenchQuantGpuCompare compare_cpu_gpu(const BenchQuantGpuRequest& req, const QuantConfig& config,
                                     const quant::Codebook& cb) {
  BenchQuantGpuCompare c;
  std::vector<float> W;
  if (req.compare_model) {
    LORDS_CHECK(req.compare_layer.has_value(), ErrorKind::Usage, "--compare-model needs --compare-layer");
    const io::ModelSource src = io::open_model(*req.compare_model);
    const HostTensor t = src.index.load_f32(*req.compare_layer);
    LORDS_CHECK(t.shape.size() == 2, ErrorKind::Usage, "{}: '{}' is not a matrix", *req.compare_model,
                *req.compare_layer);
    W = t.data;
    c.N = t.shape[0];
    c.K = t.shape[1];
    c.what = *req.compare_model + ":" + *req.compare_layer;
  } else {
    c.N = req.compare_shape->first;
    c.K = req.compare_shape->second;
    W = synthesize_matrix(c.N, c.K, nullptr, 0, 0, static_cast<uint32_t>(req.seed));
    c.what = fmt::format("synthesized {}x{} (seed {})", c.N, c.K, req.seed);
  }
  LinearStats cpu, gpu;
  Clock::time_point t = Clock::now();
  quantize_linear(W.data(), c.N, c.K, config, cb, &cpu);
  c.cpu_seconds = since(t);
  GpuLinearQuantizer gq;
  t = Clock::now();
  gq.quantize(W.data(), c.N, c.K, config, cb, &gpu);
  c.gpu_seconds = since(t);
  c.rank = gpu.rank;
  c.cpu_rel_err = std::sqrt(cpu.err_sq / cpu.w_sq);
  c.gpu_rel_err = std::sqrt(gpu.err_sq / gpu.w_sq);
  return c;
}

}  // namespace

BenchQuantGpuReport bench_quant_gpu(const BenchQuantGpuRequest& req) {
  require_gpu_device("bench-quant-gpu");
  LORDS_CHECK(req.layers >= 1 && req.layers <= 1024, ErrorKind::Usage, "--layers must be in [1, 1024], got {}",
              req.layers);
  const QuantConfig config = lords_config(req);
  const quant::Codebook cb = quant::make_codebook(req.codebook, req.bits);
  set_inner_threads(req.threads > 0 ? req.threads : default_threads());

  BenchQuantGpuReport rep;
  rep.request = req;
  rep.steps = config.effective_steps();
  const cuda::DeviceProps& props = cuda::device_props();
  rep.device = fmt::format("{} ({} SMs, {:.0f} GB)", props.name, props.sm_count,
                           static_cast<double>(props.global_mem) / 1e9);
  if (req.compare_shape || req.compare_model) rep.compare = compare_cpu_gpu(req, config, cb);

  const std::vector<LinearShape> shapes = llama3_8b_layer_linears();
  for (const LinearShape& sh : shapes) {
    BenchQuantGpuShape s;
    s.shape = sh;
    s.rank = quant::parity_rank(sh.N, sh.K, req.block);
    rep.shapes.push_back(s);
  }
  cuda::GpuQuantizer q;
  double err_sq = 0, w_sq = 0, sum_rel = 0;
  const Clock::time_point wall = Clock::now();
  for (int layer = 0; layer < req.layers; ++layer) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      const LinearShape& sh = shapes[i];
      BenchQuantGpuShape& acc = rep.shapes[i];
      Clock::time_point t = Clock::now();
      float* W = q.weight_buffer(sh.N * sh.K);
      const uint64_t seed = req.seed * 1000003ull + static_cast<uint64_t>(layer) * shapes.size() + i;
      cuda::fill_llm_like_weights(W, sh.N, sh.K, seed, q.stream());
      LORDS_CUDA_CHECK(cudaStreamSynchronize(q.stream()));
      rep.gen_seconds += since(t);

      cuda::GpuLordsOptions opt;
      opt.block = req.block;
      opt.rank = acc.rank;
      opt.solver = req.solver;
      opt.steps = rep.steps;
      opt.lr = req.lr;
      opt.scale_dtype = config.scale_dtype;
      opt.fetch = req.fetch_results ? cuda::Fetch::Everything : cuda::Fetch::ErrorsOnly;
      t = Clock::now();
      const cuda::GpuLordsResult res = q.lords(W, sh.N, sh.K, cb, opt);
      const double secs = since(t);
      acc.count += 1;
      acc.seconds += secs;
      acc.sum_rel_err += std::sqrt(res.err_sq / res.w_sq);
      acc.sum_init_rel_err += std::sqrt(res.init_objective / res.w_sq);
      acc.err_sq += res.err_sq;
      acc.w_sq += res.w_sq;
      rep.quant_seconds += secs;
      err_sq += res.err_sq;
      w_sq += res.w_sq;
      sum_rel += std::sqrt(res.err_sq / res.w_sq);
      rep.linears += 1;
    }
  }
  rep.wall_seconds = since(wall);
  rep.mean_rel_err = sum_rel / rep.linears;
  rep.total_rel_err = std::sqrt(err_sq / w_sq);
  rep.device_bytes = q.device_bytes();
  return rep;
}

}  // namespace lords::engine
