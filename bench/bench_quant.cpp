// Quantization math on one Llama-like projection (1024 x 4096 = k/v of Llama3-8B, G = 128, parity rank 6,
// NF4/NF3, Student-t weights): the Q-step, the objective, one exact ALS sweep, 10 refinement steps (ALS
// and the paper's Adam), and block-wise RTN. items/s counts weight elements per second of wall time (the
// work runs on the inner threads: OMP_NUM_THREADS / OpenBLAS). Short by default (--benchmark_min_time).
#include <benchmark/benchmark.h>

#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "lords/quant/blockwise.h"
#include "lords/quant/lords_solver.h"

namespace lords::quant {
namespace {

struct Fixture {
  int64_t N, K, G, r;
  std::vector<float> W, S;
  SvdInit init;
  Codebook cb;
  std::vector<uint8_t> codes;
};

// Student-t(4) weights, generated once per shape.
const Fixture& fixture(int64_t N, int64_t K, int bits) {
  static std::vector<std::unique_ptr<Fixture>> cache;
  for (const auto& f : cache)
    if (f->N == N && f->K == K && f->cb.bits == bits) return *f;
  auto f = std::make_unique<Fixture>();
  f->N = N;
  f->K = K;
  f->G = 128;
  f->r = parity_rank(N, K, f->G);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::chi_squared_distribution<float> chi2(4.0f);
  f->W.resize(static_cast<size_t>(N * K));
  for (float& v : f->W) v = 0.02f * normal(rng) / std::sqrt(chi2(rng) / 4.0f);
  f->init = svd_init_from_blocks(f->W.data(), N, K, f->G, f->r);
  f->cb = make_codebook(CodebookKind::NF, bits);
  f->S.resize(f->W.size());
  lowrank_product(f->init.scale, f->S.data());
  f->codes.resize(f->W.size());
  q_step(f->W.data(), f->S.data(), N, K, f->cb, f->codes.data());
  cache.push_back(std::move(f));
  return *cache.back();
}

void set_items(benchmark::State& state, const Fixture& f) {
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * f.N * f.K);
  state.counters["rank"] = static_cast<double>(f.r);
}

void BM_QStep(benchmark::State& state) {
  const Fixture& f = fixture(state.range(0), state.range(1), static_cast<int>(state.range(2)));
  std::vector<uint8_t> q(f.W.size());
  for (auto _ : state) {
    q_step(f.W.data(), f.S.data(), f.N, f.K, f.cb, q.data());
    benchmark::DoNotOptimize(q.data());
  }
  set_items(state, f);
}

void BM_Objective(benchmark::State& state) {
  const Fixture& f = fixture(state.range(0), state.range(1), static_cast<int>(state.range(2)));
  for (auto _ : state) benchmark::DoNotOptimize(lords_objective(f.W.data(), f.S.data(), f.codes.data(), f.N, f.K, f.cb, nullptr));
  set_items(state, f);
}

void BM_AlsSweep(benchmark::State& state) {
  const Fixture& f = fixture(state.range(0), state.range(1), static_cast<int>(state.range(2)));
  LowRankScale s = f.init.scale;
  for (auto _ : state) {
    als_sweep(f.W.data(), f.codes.data(), f.cb, nullptr, &s);
    benchmark::DoNotOptimize(s.A.data());
  }
  set_items(state, f);
  // 2 x (packed normal matrices + right-hand sides) GEMMs: 2 N K (T + r) flops each, T = r (r + 1) / 2.
  const double flops = 4.0 * static_cast<double>(f.N * f.K) * static_cast<double>(f.r * (f.r + 1) / 2 + f.r);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * static_cast<double>(state.iterations()) / 1e9,
                                                 benchmark::Counter::kIsRate);
}

// refine_lords with 10 steps of the solver in range(3) (1 = ALS, 2 = Adam): each step is the scale update
// (ALS: the normal-equation GEMMs and solves; Adam: the gradient GEMMs and the update), S = B A and the
// fused Q-step/objective(/gradient) pass, plus one initial evaluation per call. Workspace is reused across
// steps here, unlike the standalone als_sweep above. items = steps x N x K.
void BM_Refine(benchmark::State& state) {
  const Fixture& f = fixture(state.range(0), state.range(1), static_cast<int>(state.range(2)));
  SolverOptions opt;
  opt.kind = state.range(3) == 1 ? SolverKind::Als : SolverKind::Adam;
  opt.steps = 10;
  for (auto _ : state) benchmark::DoNotOptimize(refine_lords(f.W.data(), f.cb, f.init.scale, opt).best_objective);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * opt.steps * f.N * f.K);
  state.SetLabel(solver_kind_name(opt.kind));
}

void BM_Rtn(benchmark::State& state) {
  const Fixture& f = fixture(state.range(0), state.range(1), static_cast<int>(state.range(2)));
  for (auto _ : state) benchmark::DoNotOptimize(quantize_blockwise(f.W.data(), f.N, f.K, f.G, f.cb, nullptr).codes.data());
  set_items(state, f);
}

// (N, K, bits)
#define LORDS_QUANT_ARGS ->Args({1024, 4096, 4})->Args({1024, 4096, 3})->Unit(benchmark::kMillisecond)->MinTime(0.2)->UseRealTime()
BENCHMARK(BM_QStep) LORDS_QUANT_ARGS;
BENCHMARK(BM_Objective) LORDS_QUANT_ARGS;
BENCHMARK(BM_AlsSweep) LORDS_QUANT_ARGS;
// (N, K, bits, solver)
BENCHMARK(BM_Refine)->Args({1024, 4096, 4, 1})->Args({1024, 4096, 4, 2})->Unit(benchmark::kMillisecond)->MinTime(0.2)->UseRealTime();
BENCHMARK(BM_Rtn) LORDS_QUANT_ARGS;

}  // namespace
}  // namespace lords::quant

BENCHMARK_MAIN();
