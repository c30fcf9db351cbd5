// GpuLinearQuantizer: quantize_linear() (linear_quant.cpp) with the work done by cuda::GpuQuantizer.
// The weight is uploaded, solved, and the stored form (codes, rounded scales) and the error sums come
// back; the statistics are filled exactly as the CPU path fills them.
#include <algorithm>
#include <chrono>

#include "lords/core/error.h"
#include "lords/cuda/device.h"
#include "lords/cuda/quant/gpu_quantizer.h"
#include "lords/engine/gpu_quant.h"
#include "lords/quant/lords_init.h"

namespace lords::engine {

void require_gpu_device(const char* what) { cuda::require_gpu(what); }

struct GpuLinearQuantizer::Impl {
  cuda::GpuQuantizer q;
};

GpuLinearQuantizer::GpuLinearQuantizer() : impl_(std::make_unique<Impl>()) {}
GpuLinearQuantizer::~GpuLinearQuantizer() = default;

QuantizedLinear GpuLinearQuantizer::quantize(const float* W, int64_t N, int64_t K, const QuantConfig& config,
                                             const quant::Codebook& cb, LinearStats* stats) {
  const auto start = std::chrono::steady_clock::now();
  LORDS_CHECK(config.objective == Objective::Weight, ErrorKind::Unsupported,
              "[quantize gpu] objective '{}' has no GPU implementation", objective_name(config.objective));
  QuantizedLinear q;
  q.method = config.method;
  q.N = N;
  q.K = K;
  stats->N = N;
  stats->K = K;
  stats->block = config.block;
  if (config.method == Method::Rtn) {
    cuda::GpuRtnResult res = impl_->q.rtn_host(W, N, K, config.block, cb, config.scale_dtype);
    q.rtn = std::move(res.q);
    stats->scale_floats = static_cast<double>(q.rtn.scales.size());
    stats->w_sq = res.w_sq;
    stats->err_sq = res.err_sq;
  } else {
    cuda::GpuLordsOptions opt;
    opt.block = config.block;
    opt.rank = config.rank > 0 ? std::min<int64_t>(config.rank, std::min(N, K))
                               : quant::parity_rank(N, K, config.block);
    opt.solver = config.solver;
    opt.steps = config.effective_steps();
    opt.lr = config.lr;
    opt.scale_dtype = config.scale_dtype;
    cuda::GpuLordsResult res = impl_->q.lords_host(W, N, K, cb, opt);
    q.lowrank = std::move(res.scale);
    q.lords_codes = std::move(res.codes);
    stats->rank = opt.rank;
    stats->svd_rel_err = res.svd_rel_err;
    stats->best_step = res.best_step;
    stats->scale_floats = static_cast<double>(q.lowrank.B.size() + q.lowrank.A.size());
    stats->init_err_sq = res.init_objective;
    stats->w_sq = res.w_sq;
    stats->err_sq = res.err_sq;
  }
  stats->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return q;
}

}  // namespace lords::engine
