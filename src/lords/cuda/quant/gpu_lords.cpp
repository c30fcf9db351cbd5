// The LoRDS solver on the GPU: quant::refine_lords step for step (lords_solver.cpp), then
// engine/linear_quant.cpp's storage rounding and final Q-step.
//   init   block absmax on the GPU -> exact small SVD on the CPU (svd_init_from_absmax) -> B, A
//   eval   S = B A (cuBLAS) -> fused Q-step + f (+ Adam's g = E level, gB = g A^T, gA = B^T g)
//   als    B-step: Gp (N, T) = X (N, K) P_A (K, T) with X = level^2 and P_A the Khatri-Rao products
//          a_ik a_jk (packed i <= j), R (N, r) = Y A^T with Y = level W, then N Cholesky solves;
//          A-step: Gp (K, T) = X^T P_B (N, T), R (K, r) = Y^T B, then K solves. X and Y depend on the
//          codes only, so both half-steps share them.
//   adam   one update per alternation on ||E||_F with the gradient of f/2 scaled by 1/sqrt(f)
// The best iterate by f is kept (the result is never worse than the init). f comes back to the host
// after every Q-step (8 bytes) to make that choice, as the CPU does.
#include <algorithm>
#include <cmath>

#include "lords/core/error.h"
#include "lords/cuda/device.h"
#include "lords/cuda/quant/gemm_rm.h"
#include "lords/cuda/quant/gpu_quantizer.h"
#include "lords/cuda/quant/quantizer_impl.h"

namespace lords::cuda {
namespace {

using Workspace = detail::QuantWorkspace;
enum class Grad { No, Yes };  // whether an evaluation also computes Adam's gradient

void check_lords_args(int64_t N, int64_t K, const GpuLordsOptions& opt) {
  LORDS_CHECK(N > 0 && K > 0 && opt.block > 0, ErrorKind::Usage, "[lords gpu] bad shape ({}, {}) or block {}", N, K,
              opt.block);
  LORDS_CHECK(opt.rank >= 1 && opt.rank <= std::min(N, K), ErrorKind::Usage,
              "[lords gpu] rank {} outside [1, {}] for a ({}, {}) weight", opt.rank, std::min(N, K), N, K);
  LORDS_CHECK(opt.steps >= 0, ErrorKind::Usage, "[lords gpu] steps must be >= 0, got {}", opt.steps);
  LORDS_CHECK(opt.scale_dtype == DType::F32 || opt.scale_dtype == DType::F16 || opt.scale_dtype == DType::BF16,
              ErrorKind::Usage, "[lords gpu] scale dtype {} is not f32, f16 or bf16", dtype_name(opt.scale_dtype));
  if (opt.solver == quant::SolverKind::Als && opt.steps > 0) {
    const int r = static_cast<int>(std::min<int64_t>(opt.rank, 4096));  // larger fails below anyway
    const int64_t need = static_cast<int64_t>(qk::solve_normal_smem(r));
    LORDS_CHECK(opt.rank < 65536 && need <= device_props().smem_per_block_optin, ErrorKind::Unsupported,
                "[lords gpu] rank {}: ALS needs {} bytes of shared memory per system, the device allows {}",
                opt.rank, need, device_props().smem_per_block_optin);
  }
}

// Row-major operands of gemm_rm.
RowMajor plain(const float* p, int64_t ld) { return {p, ld, CUBLAS_OP_N}; }
RowMajor transposed(const float* p, int64_t ld) { return {p, ld, CUBLAS_OP_T}; }

struct Problem {
  const float* W;  // (N, K) device
  int64_t N, K, r;
  GpuCodebook cb;
};

// S (N, K) = B (N, r) A (r, K).
void lowrank_product(Workspace& w, const Problem& p, const float* B, const float* A) {
  gemm_rm(w.blas.cublas(), p.N, p.K, p.r, plain(B, p.r), plain(A, p.K), w.S.data(), p.K);
}

// Q-step codes and f for the current iterate (w.B, w.A); with Grad::Yes, also Adam's gB, gA (of f/2).
double evaluate(Workspace& w, const Problem& p, uint8_t* codes, Grad grad) {
  const bool grads = grad == Grad::Yes;
  const int64_t N = p.N, K = p.K, r = p.r;
  lowrank_product(w, p, w.B.data(), w.A.data());
  float* g = grads ? w.Y.data() : nullptr;
  qk::lords_eval(codes, g, p.W, w.S.data(), N * K, p.cb, w.sum_scratch(), w.st());
  if (grads) {
    gemm_rm(w.blas.cublas(), N, r, K, plain(g, K), transposed(w.A.data(), K), w.gB.data(), r);  // g A^T
    gemm_rm(w.blas.cublas(), r, K, N, transposed(w.B.data(), r), plain(g, K), w.gA.data(), K);  // B^T g
  }
  double sums[2];
  w.read_sums(sums);
  return sums[0];
}

// One exact ALS sweep (B-step, then A-step) for fixed codes; w.pairs holds the index pairs for r.
void als_sweep(Workspace& w, const Problem& p, const uint8_t* codes) {
  const int64_t N = p.N, K = p.K, r = p.r, T = r * (r + 1) / 2;
  const int ri = static_cast<int>(r);
  cublasHandle_t h = w.blas.cublas();
  float* X = w.S.data();  // S is recomputed by the next evaluate
  float* Y = w.Y.data();
  qk::normal_inputs(X, Y, p.W, codes, N * K, p.cb, w.st());
  // B-step: row n solves (sum_k L_nk^2 a_k a_k^T) b_n = sum_k L_nk W_nk a_k.
  qk::outer_products(w.P.data(), w.A.data(), K, ri, 1, K, w.pairs.data(), w.st());   // F(k, i) = A[i, k]
  gemm_rm(h, N, T, K, plain(X, K), plain(w.P.data(), T), w.Gp.data(), T);
  gemm_rm(h, N, r, K, plain(Y, K), transposed(w.A.data(), K), w.R.data(), r);
  qk::solve_normal(w.B.data(), w.Gp.data(), w.R.data(), N, ri, r, 1, w.pairs.data(), w.st());
  // A-step: column k solves (sum_n L_nk^2 b_n b_n^T) a_k = sum_n L_nk W_nk b_n.
  qk::outer_products(w.P.data(), w.B.data(), N, ri, r, 1, w.pairs.data(), w.st());   // F(n, i) = B[n, i]
  gemm_rm(h, K, T, N, transposed(X, K), plain(w.P.data(), T), w.Gp.data(), T);
  gemm_rm(h, K, r, N, transposed(Y, K), plain(w.B.data(), r), w.R.data(), r);
  qk::solve_normal(w.A.data(), w.Gp.data(), w.R.data(), K, ri, 1, K, w.pairs.data(), w.st());
}

// One Adam step on loss = ||E||_F = sqrt(f): grad loss = grad(f/2) / sqrt(f). Host scalars computed
// exactly as the CPU's adam_update (float pow).
void adam_step(Workspace& w, const Problem& p, double f, float lr, int t) {
  constexpr float kBeta1 = 0.9f, kBeta2 = 0.999f;
  const float inv_loss = f > 0 ? static_cast<float>(1.0 / std::sqrt(f)) : 0.0f;
  const float bc1 = 1.0f - std::pow(kBeta1, static_cast<float>(t));
  const float bc2_sqrt = std::sqrt(1.0f - std::pow(kBeta2, static_cast<float>(t)));
  const float step = lr / bc1;
  qk::adam_update(w.B.data(), w.gB.data(), inv_loss, w.mB.data(), w.vB.data(), p.N * p.r, step, bc2_sqrt, w.st());
  qk::adam_update(w.A.data(), w.gA.data(), inv_loss, w.mA.data(), w.vA.data(), p.r * p.K, step, bc2_sqrt, w.st());
}

void reserve(Workspace& w, int64_t N, int64_t K, int64_t r, int64_t G, quant::SolverKind solver) {
  const bool als = solver == quant::SolverKind::Als, adam = solver == quant::SolverKind::Adam;
  const auto z = [](int64_t n) { return static_cast<size_t>(n); };
  const int64_t NK = N * K, M = std::max(N, K), T = r * (r + 1) / 2;
  w.S.reserve(z(NK));
  w.codes[0].reserve(z(NK));
  w.codes[1].reserve(z(NK));
  for (DeviceBuffer<float>* b : {&w.B, &w.best_B}) b->reserve(z(N * r));
  for (DeviceBuffer<float>* b : {&w.A, &w.best_A}) b->reserve(z(r * K));
  w.absmax.reserve(z(N * quant::num_blocks(K, G)));
  if (als || adam) w.Y.reserve(z(NK));
  if (als) {
    w.P.reserve(z(M * T));
    w.Gp.reserve(z(M * T));
    w.R.reserve(z(M * r));
    w.pairs.reserve(z(T));
  }
  if (adam) {
    for (DeviceBuffer<float>* b : {&w.gB, &w.mB, &w.vB}) b->reserve(z(N * r));
    for (DeviceBuffer<float>* b : {&w.gA, &w.mA, &w.vA}) b->reserve(z(r * K));
  }
}

}  // namespace

GpuLordsResult GpuQuantizer::lords(const float* W, int64_t N, int64_t K, const quant::Codebook& cb,
                                   const GpuLordsOptions& opt) {
  check_lords_args(N, K, opt);
  Workspace& w = *ws_;
  const int64_t r = opt.rank, G = opt.block;
  const int steps = opt.solver == quant::SolverKind::None ? 0 : opt.steps;
  const bool adam = opt.solver == quant::SolverKind::Adam && steps > 0;
  const bool als = opt.solver == quant::SolverKind::Als && steps > 0;
  const Problem p{W, N, K, r, gpu_codebook(cb)};
  reserve(w, N, K, r, G, steps > 0 ? opt.solver : quant::SolverKind::None);
  const Grad grad = adam ? Grad::Yes : Grad::No;

  // Init: the block absmax here, the (N, nb) SVD on the CPU; the same B, A as svd_init_from_blocks.
  const int64_t nb = quant::num_blocks(K, G);
  qk::block_absmax(w.absmax.data(), W, N, K, G, DType::F32, w.st());
  std::vector<float> s(static_cast<size_t>(N * nb));
  w.to_host(s.data(), w.absmax.data(), N * nb);
  const quant::SvdInit init = quant::svd_init_from_absmax(s.data(), N, K, G, r);
  w.to_device(w.B.data(), init.scale.B.data(), N * r);
  w.to_device(w.A.data(), init.scale.A.data(), r * K);
  w.device_copy(w.best_B.data(), w.B.data(), N * r);
  w.device_copy(w.best_A.data(), w.A.data(), r * K);
  if (adam) {
    for (DeviceBuffer<float>* b : {&w.mB, &w.vB, &w.mA, &w.vA}) b->zero(w.st());
  }
  if (als) qk::tri_pairs(w.pairs.data(), static_cast<int>(r), w.st());

  GpuLordsResult res;
  res.svd_rel_err = init.rel_err;
  // Two code buffers: `best` holds the best iterate's codes, the other one takes each new Q-step.
  int best = 0, latest = 0;
  double f = evaluate(w, p, w.codes[0].data(), grad);
  res.init_objective = res.best_objective = f;
  res.history.reserve(static_cast<size_t>(steps) + 1);
  res.history.push_back(f);
  for (int step = 1; step <= steps; ++step) {
    if (adam) {
      adam_step(w, p, f, opt.lr, step);
    } else {
      als_sweep(w, p, w.codes[latest].data());
    }
    latest = 1 - best;
    f = evaluate(w, p, w.codes[latest].data(), grad);
    res.history.push_back(f);
    if (f < res.best_objective) {
      res.best_objective = f;
      res.best_step = step;
      w.device_copy(w.best_B.data(), w.B.data(), N * r);
      w.device_copy(w.best_A.data(), w.A.data(), r * K);
      best = latest;
    }
  }

  // What is stored: the best B, A rounded to the storage dtype, and the Q-step against exactly that.
  qk::round_through(w.best_B.data(), N * r, opt.scale_dtype, w.st());
  qk::round_through(w.best_A.data(), r * K, opt.scale_dtype, w.st());
  lowrank_product(w, p, w.best_B.data(), w.best_A.data());
  uint8_t* final_codes = w.codes[best].data();
  qk::lords_final(final_codes, W, w.S.data(), N * K, p.cb, w.sum_scratch(), w.st());
  double sums[2];
  w.read_sums(sums);
  res.err_sq = sums[0];
  res.w_sq = sums[1];
  if (opt.fetch == Fetch::Everything) {
    res.scale.N = N;
    res.scale.K = K;
    res.scale.r = r;
    res.scale.B.resize(static_cast<size_t>(N * r));
    res.scale.A.resize(static_cast<size_t>(r * K));
    res.codes.resize(static_cast<size_t>(N * K));
    w.to_host(res.scale.B.data(), w.best_B.data(), N * r);
    w.to_host(res.scale.A.data(), w.best_A.data(), r * K);
    w.to_host(res.codes.data(), final_codes, N * K);
  }
  return res;
}

}  // namespace lords::cuda
