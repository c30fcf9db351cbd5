#include "lords/engine/linear_quant.h"

#include <chrono>

#include "lords/core/error.h"
#include "lords/quant/gptq.h"
#include "lords/quant/lords_solver.h"

namespace lords::engine {
namespace {

thread_local DType t_round_dtype = DType::F16;  // read by the plain function pointer below
float round_scale(float v) { return round_through(t_round_dtype, v); }

// sum (a - b)^2, or sum a^2 when b is null; in double so 10^8-element sums stay exact enough.
double sq_err(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - (b != nullptr ? b[i] : 0.0f);
    s += d * d;
  }
  return s;
}

std::vector<float> diagonal(const std::vector<double>& H, int64_t K) {
  std::vector<float> d(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) d[static_cast<size_t>(k)] = static_cast<float>(std::max(0.0, H[static_cast<size_t>(k * K + k)]));
  return d;
}

void quantize_lords(const float* W, int64_t N, int64_t K, const QuantConfig& config, const quant::Codebook& cb,
                    const std::vector<double>* H, QuantizedLinear* q, LinearStats* stats) {
  const int64_t r = config.rank > 0 ? std::min<int64_t>(config.rank, std::min(N, K))
                                    : quant::parity_rank(N, K, config.block);
  const quant::SvdInit init = quant::svd_init_from_blocks(W, N, K, config.block, r);
  quant::SolverResult res;
  const quant::GptqOptions gopt{config.damp, config.act_order, 128};
  std::vector<float> d;
  if (config.objective == Objective::Gptq) {
    res = quant::refine_lords_gptq(W, cb, init.scale, *H, gopt, config.effective_steps());
  } else {
    quant::SolverOptions opt;
    opt.kind = config.solver;
    opt.steps = config.effective_steps();
    opt.lr = config.lr;
    if (config.objective == Objective::Act) {
      d = diagonal(*H, K);
      opt.col_weight = d.data();
    }
    res = quant::refine_lords(W, cb, init.scale, opt);
  }
  q->lowrank = std::move(res.scale);
  for (float& v : q->lowrank.B) v = round_scale(v);
  for (float& v : q->lowrank.A) v = round_scale(v);
  // Final Q-step against the stored (rounded) scale, with the objective's own rounding rule.
  std::vector<float> S(static_cast<size_t>(N * K));
  quant::lowrank_product(q->lowrank, S.data());
  q->lords_codes.resize(static_cast<size_t>(N * K));
  if (config.objective == Objective::Gptq) {
    quant::gptq_codes(W, S.data(), N, K, cb, *H, gopt, q->lords_codes.data());
  } else {
    quant::q_step(W, S.data(), N, K, cb, q->lords_codes.data());
  }
  stats->rank = r;
  stats->svd_rel_err = init.rel_err;
  stats->best_step = res.best_step;
  stats->scale_floats = static_cast<double>(q->lowrank.B.size() + q->lowrank.A.size());
  // The init's plain weight error (Q-step at the unrefined SVD scale), comparable across objectives. For the
  // weight objective the solver already measured exactly that.
  if (config.objective == Objective::Weight) {
    stats->init_err_sq = res.init_objective;
  } else {
    std::vector<float> S0(static_cast<size_t>(N * K)), W0(static_cast<size_t>(N * K));
    std::vector<uint8_t> c0(static_cast<size_t>(N * K));
    quant::lowrank_product(init.scale, S0.data());
    quant::q_step(W, S0.data(), N, K, cb, c0.data());
    quant::dequantize_lords(init.scale, c0.data(), cb, W0.data());
    stats->init_err_sq = sq_err(W, W0.data(), N * K);
  }
}

}  // namespace

QuantizedLinear quantize_linear(const float* W, int64_t N, int64_t K, const QuantConfig& config,
                                const quant::Codebook& cb, LinearStats* stats, const std::vector<double>* H) {
  const auto start = std::chrono::steady_clock::now();
  LORDS_CHECK(config.objective == Objective::Weight || (H != nullptr && static_cast<int64_t>(H->size()) == K * K),
              ErrorKind::Usage, "[quantize] objective '{}' needs calibration statistics ({}x{})",
              objective_name(config.objective), K, K);
  QuantizedLinear q;
  q.method = config.method;
  q.N = N;
  q.K = K;
  stats->N = N;
  stats->K = K;
  stats->block = config.block;
  t_round_dtype = config.scale_dtype;
  if (config.method == Method::Rtn) {
    q.rtn = config.objective == Objective::Gptq
                ? quant::gptq_blockwise(W, N, K, config.block, cb, *H, {config.damp, config.act_order, 128}, &round_scale)
                : quant::quantize_blockwise(W, N, K, config.block, cb, &round_scale);
    stats->scale_floats = static_cast<double>(q.rtn.scales.size());
  } else {
    quantize_lords(W, N, K, config, cb, H, &q, stats);
  }
  std::vector<float> W_hat(static_cast<size_t>(N * K));
  dequantize_linear(q, cb, W_hat.data());
  stats->w_sq = sq_err(W, nullptr, N * K);
  stats->err_sq = sq_err(W, W_hat.data(), N * K);
  if (H != nullptr) {
    const std::vector<float> zero(static_cast<size_t>(N * K), 0.0f);
    stats->out_sq = quant::hessian_objective(W, zero.data(), N, K, *H);
    stats->out_err_sq = quant::hessian_objective(W, W_hat.data(), N, K, *H);
  }
  stats->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return q;
}

void dequantize_linear(const QuantizedLinear& q, const quant::Codebook& cb, float* W_hat) {
  if (q.method == Method::Rtn) {
    quant::dequantize_blockwise(q.rtn, cb, W_hat);
  } else {
    quant::dequantize_lords(q.lowrank, q.lords_codes.data(), cb, W_hat);
  }
}

}  // namespace lords::engine
