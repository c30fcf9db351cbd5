// Tiles of W_hat for the cpu backends of lords::train (see qlinear_tile.h), plus cpu::qlinear_dx,
// the input gradient of a frozen quantized linear. Codes are decoded with a scalar shift register:
// the tile's GEMMs cost M FMAs per weight against a handful of integer ops for the decode.
#include "lords/train/cpu/qlinear_tile.h"

#include "lords/quant/pack.h"

namespace lords::train::cpu {
namespace detail {

float* tile_scratch(size_t floats) {
  static thread_local std::vector<float> buf;
  if (buf.size() < floats) buf.resize(floats);
  return buf.data();
}

float* partial_scratch(size_t floats) {
  static thread_local std::vector<float> buf;
  if (buf.size() < floats) buf.resize(floats);
  return buf.data();
}

void gemm(MatOut c, int64_t m, int64_t n, int64_t k, float alpha, MatIn a, MatIn b) {
  cblas_sgemm(CblasRowMajor,
              a.op,
              b.op,
              static_cast<int>(m),
              static_cast<int>(n),
              static_cast<int>(k),
              alpha,
              a.p,
              static_cast<int>(a.ld),
              b.p,
              static_cast<int>(b.ld),
              c.beta,
              c.p,
              static_cast<int>(c.ld));
}

void levels_tile_packed(float* Lt, int64_t ld, const ops::QWeight& w, Tile t) {
  LORDS_ASSERT(t.k0 % 8 == 0);
  const int bits = w.bits;
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  const int64_t row_bytes = quant::packed_row_bytes(w.K, bits);
  for (int64_t i = 0; i < t.rows; ++i) {
    // Codes k0.. of the row start on a byte (k0 % 8 == 0: 8 codes are `bits` bytes), so the rest
    // of the row is an LSB-first stream of its own; bytes are pulled only as needed, never past
    // the row's last code.
    const uint8_t* p = w.codes + (t.n0 + i) * row_bytes + t.k0 / 8 * bits;
    float* out = Lt + i * ld;
    uint64_t acc = 0;
    int have = 0;  // bits pending in acc
    for (int64_t c = 0; c < t.cols(); ++c) {
      if (have < bits) {
        acc |= static_cast<uint64_t>(*p++) << have;
        have += 8;
      }
      out[c] = w.levels[acc & mask];
      acc >>= bits;
      have -= bits;
    }
  }
}

void levels_tile_unpacked(
    float* Lt, int64_t ld, const uint8_t* codes, const float* levels, int64_t K, Tile t) {
  for (int64_t i = 0; i < t.rows; ++i) {
    const uint8_t* q = codes + (t.n0 + i) * K + t.k0;
    for (int64_t c = 0; c < t.cols(); ++c) Lt[i * ld + c] = levels[q[c]];
  }
}

void lowrank_scale_tile(
    float* St, int64_t ld, const float* B, const float* A, int64_t r, int64_t K, Tile t) {
  gemm({St, ld, 0.0f}, t.rows, t.cols(), r, 1.0f, {B + t.n0 * r, r}, {A + t.k0, K});
}

void qweight_tile(float* Wt, float* St, int64_t ld, const ops::QWeight& w, Tile t) {
  levels_tile_packed(Wt, ld, w, t);
  if (w.kind == ops::QScaleKind::LowRank) {
    lowrank_scale_tile(St, ld, w.B, w.A, w.r, w.K, t);
    mul_tile(Wt, Wt, St, ld, t);
    return;
  }
  const int64_t nb = quant::num_blocks(w.K, w.G);
  for (int64_t i = 0; i < t.rows; ++i)
    for (int64_t c = 0; c < t.cols(); ++c)
      Wt[i * ld + c] *= w.scales[(t.n0 + i) * nb + (t.k0 + c) / w.G];
}

void mul_tile(float* T, const float* U, const float* V, int64_t ld, Tile t) {
  for (int64_t i = 0; i < t.rows; ++i)
    for (int64_t c = 0; c < t.cols(); ++c) T[i * ld + c] = U[i * ld + c] * V[i * ld + c];
}

}  // namespace detail

void qlinear_dx(
    float* dX, const float* dY, int64_t M, const ops::QWeight& w, const QLinearTiles& tiles) {
  using namespace detail;
  LORDS_ASSERT(M >= 1 && w.N >= 1 && w.K >= 1 && w.codes && w.levels);
  LORDS_ASSERT(tiles.rows >= 1 && tiles.cols >= 8 && tiles.cols % 8 == 0);
  const int64_t N = w.N, K = w.K, tr = tiles.rows, tc = tiles.cols;
  const int64_t blocks = (K + tc - 1) / tc;
  const int threads = column_threads(blocks, N, K);
  std::optional<BlasSingleThread> blas;
  if (threads > 1) blas.emplace();
    // Each thread owns whole column blocks of dX and sums their row tiles in order
    // (qlinear_tile.h).
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    float* Wt = tile_scratch(static_cast<size_t>(2 * tr * tc));
    float* St = Wt + tr * tc;
    const int64_t k0 = b * tc, k1 = std::min(K, k0 + tc);
    for (int64_t n0 = 0; n0 < N; n0 += tr) {
      const Tile t{n0, std::min(tr, N - n0), k0, k1};
      qweight_tile(Wt, St, tc, w, t);
      gemm({dX + k0, K, n0 == 0 ? 0.0f : 1.0f}, M, t.cols(), t.rows, 1.0f, {dY + n0, N}, {Wt, tc});
    }
  }
}

}  // namespace lords::train::cpu
