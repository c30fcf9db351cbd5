// CPU LoRDS linear backward (fp32, OpenMP + single-threaded cblas_sgemm per tile) on the bit-packed
// ops::QWeight: dX = dY W_hat (overwritten), dB += dS A^T, dA += B^T dS with dS = (dY^T X) (.) L.
// Per (tiles.rows, tiles.cols) tile: decode the codes into levels L, rebuild S = B A for the tile
// (one small sgemm), W_hat = L (.) S, then four sgemms (dX, dW_hat, dA, dB); dS exists one tile at
// a time. Column blocks go to threads (qlinear_tile.h says why); fp32 sums, so results differ from
// ref:: in rounding only.
#include "lords/train/qlinear_grad.h"

#include "lords/train/cpu/qlinear_tile.h"

namespace lords::train::cpu {

void lords_linear_bwd(const LordsLinearGrads<float>& g,
                      const float* dY,
                      const float* X,
                      int64_t M,
                      const ops::QWeight& w,
                      const QLinearTiles& tiles) {
  LORDS_ASSERT(M >= 1 && w.N >= 1 && w.K >= 1 && w.codes && w.levels && w.bits >= 2 && w.bits <= 4);
  LORDS_ASSERT(w.kind == ops::QScaleKind::LowRank && w.r >= 1 && w.B && w.A);
  LORDS_ASSERT(g.dX && g.dB && g.dA && tiles.rows >= 1 && tiles.cols % 8 == 0 && tiles.cols >= 8);
  const detail::LowRankBwd p{M, w.N, w.K, w.r, dY, X, w.B, w.A, g.dX, g.dB, g.dA, tiles};
  detail::lowrank_bwd_tiles(
      p,
      [&](float* Lt, detail::Tile t) { detail::levels_tile_packed(Lt, tiles.cols, w, t); },
      [](const float*, const float*, detail::Tile) {});
}

}  // namespace lords::train::cpu
