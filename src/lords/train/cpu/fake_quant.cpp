// CPU QAT fake quantization (fp32; see fake_quant.h for the math and the STE choice).
//   forward   OpenMP over row tiles; per (rows, cols) tile: S = B A (sgemm), codes by the
//             quantizer's AVX2 nearest-level search (quant/nearest_kernel.h, the same function the
//             PTQ solver uses, so QAT and PTQ pick identical codes for identical W / S), W_hat =
//             level * S, Y[:, rows] (+)= X[:, cols] W_hat^T (sgemm). W_hat is never stored whole.
//   backward  detail::lowrank_bwd_tiles with the levels read from the codes cache; the tile of
//             dW_hat is added into dW through the STE mask before it becomes dS.
#include "lords/train/fake_quant.h"

#include <cmath>

#include "lords/quant/codebook.h"
#include "lords/quant/nearest_kernel.h"
#include "lords/train/cpu/qlinear_tile.h"

namespace lords::train::cpu {
namespace {

void assert_valid(const FakeQuantWeight<float>& w, int64_t M, const QLinearTiles& tiles) {
  LORDS_ASSERT(M >= 1 && w.N >= 1 && w.K >= 1 && w.r >= 1 && w.bits >= 2 && w.bits <= 4);
  LORDS_ASSERT(w.W && w.B && w.A && w.levels);
  LORDS_ASSERT(tiles.rows >= 1 && tiles.cols >= 8 && tiles.cols % 8 == 0);
}

}  // namespace

void fake_quant_linear_fwd(float* Y,
                           uint8_t* codes,
                           const float* X,
                           int64_t M,
                           const FakeQuantWeight<float>& w,
                           const FakeQuantOptions& opt) {
  using namespace detail;
  assert_valid(w, M, opt.tiles);
  const quant::Codebook cb = quant::codebook_from_levels(
      quant::CodebookKind::NF, w.bits, {w.levels, w.levels + (1 << w.bits)});
  const uint8_t zero = cb.nearest(0.0f);
  const int64_t N = w.N, K = w.K, tr = opt.tiles.rows, tc = opt.tiles.cols;
  const int64_t row_tiles = (N + tr - 1) / tr;
  const int threads = row_tiles > 1 && N * K >= kMinParallelWeights
                          ? static_cast<int>(std::min<int64_t>(omp_get_max_threads(), row_tiles))
                          : 1;
  std::optional<BlasSingleThread> blas;
  if (threads > 1) blas.emplace();
    // Each row tile is computed whole by one thread, K blocks in order: the result does not depend
    // on the schedule, so dynamic is safe and keeps a descheduled thread from holding up the rest.
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t ti = 0; ti < row_tiles; ++ti) {
    float* St = tile_scratch(static_cast<size_t>(2 * tr * tc));
    float* Wt = St + tr * tc;
    const int64_t n0 = ti * tr, rows = std::min(tr, N - n0);
    for (int64_t k0 = 0; k0 < K; k0 += tc) {
      const Tile t{n0, rows, k0, std::min(K, k0 + tc)};
      lowrank_scale_tile(St, tc, w.B, w.A, w.r, K, t);
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t at = (n0 + i) * K + k0;
        quant::detail::nearest_codes(w.W + at, St + i * tc, 1, t.cols(), cb, zero, codes + at);
      }
      levels_tile_unpacked(Wt, tc, codes, w.levels, K, t);
      mul_tile(Wt, Wt, St, tc, t);
      gemm({Y + n0, N, k0 == 0 ? 0.0f : 1.0f},
           M,
           rows,
           t.cols(),
           1.0f,
           {X + k0, K},
           {Wt, tc, CblasTrans});
    }
  }
}

void fake_quant_linear_bwd(const FakeQuantGrads<float>& g,
                           const float* dY,
                           const float* X,
                           const uint8_t* codes,
                           int64_t M,
                           const FakeQuantWeight<float>& w,
                           const FakeQuantOptions& opt) {
  using namespace detail;
  assert_valid(w, M, opt.tiles);
  LORDS_ASSERT(g.dX && g.dW && g.dB && g.dA && codes);
  const int64_t K = w.K, tc = opt.tiles.cols;
  const float lo = w.levels[0], hi = w.levels[(1 << w.bits) - 1];
  const LowRankBwd p{M, w.N, K, w.r, dY, X, w.B, w.A, g.dX, g.dB, g.dA, opt.tiles};
  lowrank_bwd_tiles(
      p,
      [&](float* Lt, Tile t) { levels_tile_unpacked(Lt, tc, codes, w.levels, K, t); },
      [&](const float* G, const float* St, Tile t) {
        // The thread owns columns [k0, k1) of dW: no other thread writes them.
        for (int64_t i = 0; i < t.rows; ++i) {
          const int64_t at = (t.n0 + i) * K + t.k0;
          const float* Wr = w.W + at;
          float* dWr = g.dW + at;
          for (int64_t c = 0; c < t.cols(); ++c) {
            const float s = St[i * tc + c], x = Wr[c] / s;
            const bool pass = opt.ste == SteRange::PassAll ||
                              (std::fabs(s) >= quant::detail::kTinyScale && x >= lo && x <= hi);
            dWr[c] += pass ? G[i * tc + c] : 0.0f;
          }
        }
      });
}

}  // namespace lords::train::cpu
