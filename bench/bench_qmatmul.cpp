// qmatmul on Llama-family projections, N x K: SmolLM2-135M 576 x 1536 and 1536 x 576, Llama
// 4096 x 4096, Llama-3-8B down_proj 4096 x 14336; M = 1 (decode), 16, 128 (prefill); 4-bit codes.
//   lords  cpu::qmatmul, low-rank scale at the parity rank for G = 128 (as many floats as block)
//   block  cpu::qmatmul, block scales, G = 128
//   dense  cblas_sgemm on the fp32 weight: the baseline a quantized kernel has to beat at M = 1
// GB/s counts the weight bytes streamed per call (packed codes + fp32 scales, or the fp32 matrix),
// GFLOP/s counts 2 M N K. Wall time (UseRealTime): the work runs on the OpenMP / OpenBLAS threads.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "lords/ops/qmatmul.h"
#include "lords/quant/blockwise.h"
#include "lords/quant/lords_init.h"
#include "lords/quant/pack.h"

namespace lords::ops {
namespace {

constexpr int kBits = 4;
constexpr int64_t kG = 128;

struct Fixture {
  int64_t N, K, r;
  std::vector<uint8_t> packed;      // (N, packed_row_bytes(K, 4)), uniformly random codes
  std::vector<float> levels, B, A;  // (16), (N, r), (r, K)
  std::vector<float> scales;        // (N, ceil(K / G))
  std::vector<float> W;             // (N, K) dense fp32 baseline
  QWeight lords, block;
};

// Cheap uniform floats in [lo, hi): the values do not affect the timing, only their count does.
void fill(std::vector<float>& v, size_t n, std::mt19937& rng, float lo, float hi) {
  v.resize(n);
  const float step = (hi - lo) / 4294967296.0f;
  for (float& x : v) x = lo + step * static_cast<float>(rng());
}

const Fixture& fixture(int64_t N, int64_t K) {
  static std::vector<std::unique_ptr<Fixture>> cache;
  for (const auto& f : cache)
    if (f->N == N && f->K == K) return *f;
  auto f = std::make_unique<Fixture>();
  f->N = N;
  f->K = K;
  f->r = quant::parity_rank(N, K, kG);
  std::mt19937 rng(1);
  f->packed.resize(static_cast<size_t>(N * quant::packed_row_bytes(K, kBits)));
  for (uint8_t& b : f->packed) b = static_cast<uint8_t>(rng());
  f->levels = {-1.0f,
               -0.70f,
               -0.53f,
               -0.39f,
               -0.28f,
               -0.18f,
               -0.09f,
               0.0f,
               0.08f,
               0.16f,
               0.25f,
               0.34f,
               0.44f,
               0.56f,
               0.72f,
               1.0f};
  fill(f->B, static_cast<size_t>(N * f->r), rng, 0.0f, 0.1f);
  fill(f->A, static_cast<size_t>(f->r * K), rng, 0.0f, 0.1f);
  fill(f->scales, static_cast<size_t>(N * quant::num_blocks(K, kG)), rng, 0.0f, 0.1f);
  fill(f->W, static_cast<size_t>(N * K), rng, -0.1f, 0.1f);
  QWeight base;
  base.N = N;
  base.K = K;
  base.bits = kBits;
  base.codes = f->packed.data();
  base.levels = f->levels.data();
  f->lords = base;
  f->lords.kind = QScaleKind::LowRank;
  f->lords.r = f->r;
  f->lords.B = f->B.data();
  f->lords.A = f->A.data();
  f->block = base;
  f->block.kind = QScaleKind::Block;
  f->block.G = kG;
  f->block.scales = f->scales.data();
  cache.push_back(std::move(f));
  return *cache.back();
}

std::vector<float> activations(int64_t M, int64_t K) {
  std::mt19937 rng(2);
  std::vector<float> x;
  fill(x, static_cast<size_t>(M * K), rng, -1.0f, 1.0f);
  return x;
}

void set_counters(benchmark::State& state, double weight_bytes, int64_t M, int64_t N, int64_t K) {
  using benchmark::Counter;
  state.counters["GB/s"] = Counter(weight_bytes / 1e9, Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] =
      Counter(2.0 * static_cast<double>(M * N * K) / 1e9, Counter::kIsIterationInvariantRate);
}

// Times cpu::qmatmul on one of the fixture's weights; range: (N, K, M).
void run_qmatmul(benchmark::State& state, const QWeight& w) {
  const int64_t M = state.range(2);
  const std::vector<float> X = activations(M, w.K);
  std::vector<float> Y(static_cast<size_t>(M * w.N));
  for (auto _ : state) {
    cpu::qmatmul(Y.data(), X.data(), M, w);
    benchmark::DoNotOptimize(Y.data());
  }
  set_counters(state, static_cast<double>(qweight_bytes(w)), M, w.N, w.K);
}

void BM_qmatmul_lords(benchmark::State& state) {
  const Fixture& f = fixture(state.range(0), state.range(1));
  run_qmatmul(state, f.lords);
  state.counters["rank"] = static_cast<double>(f.r);
}

void BM_qmatmul_block(benchmark::State& state) { run_qmatmul(state, fixture(state.range(0), state.range(1)).block); }

void BM_qmatmul_dense_sgemm(benchmark::State& state) {
  const Fixture& f = fixture(state.range(0), state.range(1));
  const int64_t M = state.range(2);
  const std::vector<float> X = activations(M, f.K);
  std::vector<float> Y(static_cast<size_t>(M * f.N));
  const int m = static_cast<int>(M), n = static_cast<int>(f.N), k = static_cast<int>(f.K);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor,
                CblasNoTrans,
                CblasTrans,
                m,
                n,
                k,
                1.0f,
                X.data(),
                k,
                f.W.data(),
                k,
                0.0f,
                Y.data(),
                n);
    benchmark::DoNotOptimize(Y.data());
  }
  set_counters(state, 4.0 * static_cast<double>(f.N * f.K), M, f.N, f.K);
}

void qmatmul_args(benchmark::internal::Benchmark* b) {
  const int64_t shapes[][2] = {{576, 1536}, {1536, 576}, {4096, 4096}, {4096, 14336}};
  for (const auto& s : shapes)
    for (int64_t M : {1, 16, 128}) b->Args({s[0], s[1], M});
  b->ArgNames({"N", "K", "M"})->Unit(benchmark::kMicrosecond)->MinTime(0.2)->UseRealTime();
}

BENCHMARK(BM_qmatmul_lords)->Apply(qmatmul_args);
BENCHMARK(BM_qmatmul_block)->Apply(qmatmul_args);
BENCHMARK(BM_qmatmul_dense_sgemm)->Apply(qmatmul_args);

}  // namespace
}  // namespace lords::ops
