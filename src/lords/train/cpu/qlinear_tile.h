// Internal to the cpu backends of lords::train (cpu/qlinear_grad.cpp, cpu/fake_quant.cpp,
// cpu/lora_linear.cpp): tiles of W_hat and the tiled low-rank backward they share.
//
// Tiling of the backward (why columns): the work is split into column blocks [k0, k1) of tiles.cols
// columns, one block per OpenMP iteration, and inside a block the rows go by in sub-blocks of
// tiles.rows. A thread that owns a column block owns dX[:, k0:k1] and dA[:, k0:k1] outright (both
// are sums over n, done in order within the thread), so the only reduction left is dB (N, r): a
// per-thread partial summed in thread order at the end. Tiling by rows instead would make dX (M, K)
// the per-thread partial, M K floats per thread against N r here.
#pragma once

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "lords/core/error.h"
#include "lords/ops/qmatmul.h"
#include "lords/train/qlinear_common.h"

namespace lords::train::cpu::detail {

// Below this many weights one thread beats waking a team (the same cut as ops::cpu::qmatmul).
constexpr int64_t kMinParallelWeights = int64_t{1} << 15;

// Rows [n0, n0 + rows) x columns [k0, k1) of an (N, K) matrix.
struct Tile {
  int64_t n0, rows, k0, k1;
  int64_t cols() const { return k1 - k0; }
};

// Debian's pthread OpenBLAS does not see the OpenMP team, so a threaded sgemm inside our parallel
// regions would oversubscribe the cores: single-threaded for the guard's life, then restored (a
// process-wide setting, as in ops::cpu::qmatmul).
class BlasSingleThread {
 public:
  BlasSingleThread() : saved_(openblas_get_num_threads()) { openblas_set_num_threads(1); }
  ~BlasSingleThread() { openblas_set_num_threads(saved_); }
  BlasSingleThread(const BlasSingleThread&) = delete;
  BlasSingleThread& operator=(const BlasSingleThread&) = delete;

 private:
  int saved_;
};

// Per-thread tile buffers, grown on first use and kept: a call allocates only when a thread meets a
// bigger tile than before.
float* tile_scratch(size_t floats);
// The calling thread's buffer for per-thread partial sums (kept apart from its tile_scratch).
float* partial_scratch(size_t floats);

// Row-major operands of gemm: op(A) is (m, k) and op(B) is (k, n).
struct MatIn {
  const float* p;
  int64_t ld;
  CBLAS_TRANSPOSE op = CblasNoTrans;
};
struct MatOut {
  float* p;
  int64_t ld;
  float beta;  // 0: overwrite C, 1: accumulate
};
// C (m, n) = alpha op(A) op(B) + beta C through cblas_sgemm.
void gemm(MatOut c, int64_t m, int64_t n, int64_t k, float alpha, MatIn a, MatIn b);

// Lt[i * ld + c] = levels[code of (n0 + i, k0 + c)], codes bit-packed (w.codes; t.k0 % 8 == 0).
void levels_tile_packed(float* Lt, int64_t ld, const ops::QWeight& w, Tile t);
// The same from unpacked codes (N, K), one per byte.
void levels_tile_unpacked(
    float* Lt, int64_t ld, const uint8_t* codes, const float* levels, int64_t K, Tile t);
// St = B[n0:n0+rows, :] (rows, r) A[:, k0:k1] (r, cols): the low-rank scales of the tile.
void lowrank_scale_tile(
    float* St, int64_t ld, const float* B, const float* A, int64_t r, int64_t K, Tile t);
// Wt = the tile of W_hat for either scale kind of w, using St (same ld) as scratch for the scales.
void qweight_tile(float* Wt, float* St, int64_t ld, const ops::QWeight& w, Tile t);
// T (rows, cols) = U (.) V elementwise over the tile, all with leading dimension ld; T may alias U.
void mul_tile(float* T, const float* U, const float* V, int64_t ld, Tile t);

// Threads for a column-block loop: 1 for small problems or a single block.
inline int column_threads(int64_t blocks, int64_t N, int64_t K) {
  if (blocks <= 1 || N * K < kMinParallelWeights) return 1;
  return static_cast<int>(std::min<int64_t>(omp_get_max_threads(), blocks));
}

// The low-rank backward over tiles (see the file comment), shared by the LoRDS linear and QAT:
//   dX[:, blk] = sum_tiles dY[:, rows] Wt          (overwritten, Wt = Lt (.) St)
//   G = dY[:, rows]^T X[:, blk]                    (the tile of dW_hat)
//   dS = G (.) Lt;  dA[:, blk] += B[rows]^T dS;  dB[rows] += dS A[:, blk]^T
struct LowRankBwd {
  int64_t M, N, K, r;
  const float* dY;  // (M, N)
  const float* X;   // (M, K)
  const float* B;   // (N, r)
  const float* A;   // (r, K)
  float* dX;        // (M, K) overwritten
  float* dB;        // (N, r) accumulated
  float* dA;        // (r, K) accumulated
  QLinearTiles tiles;
};

// levels(Lt, t) fills the levels of tile t (leading dimension tiles.cols); on_grad(G, St, t) sees
// the tile of dW_hat (and of the scales) before it is turned into dS, for QAT's latent-weight
// gradient.
template <class Levels, class OnGrad>
void lowrank_bwd_tiles(const LowRankBwd& p, Levels&& levels, OnGrad&& on_grad) {
  const int64_t M = p.M, N = p.N, K = p.K, r = p.r, tr = p.tiles.rows, tc = p.tiles.cols;
  const int64_t blocks = (K + tc - 1) / tc;
  const int threads = column_threads(blocks, N, K);
  float* partials = partial_scratch(static_cast<size_t>(threads * N * r));  // (threads, N, r)
  int team = 1;
  std::optional<BlasSingleThread> blas;
  if (threads > 1) blas.emplace();
#pragma omp parallel num_threads(threads)
  {
    const int tid = omp_get_thread_num();
#pragma omp single
    team = omp_get_num_threads();  // the runtime may grant fewer threads than asked
    float* dB_part = partials + tid * N * r;
    std::fill(dB_part, dB_part + N * r, 0.0f);
    float* Lt = tile_scratch(static_cast<size_t>(3 * tr * tc));
    float* St = Lt + tr * tc;
    float* Wt = St + tr * tc;  // W_hat's tile, then dW_hat's, then dS's
    // Static schedule: the block -> thread map, hence each partial's summation order, depends on
    // the team size only, so results repeat bit for bit.
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t k0 = b * tc, k1 = std::min(K, k0 + tc), kw = k1 - k0;
      for (int64_t n0 = 0; n0 < N; n0 += tr) {
        const Tile t{n0, std::min(tr, N - n0), k0, k1};
        levels(Lt, t);
        lowrank_scale_tile(St, tc, p.B, p.A, r, K, t);
        mul_tile(Wt, Lt, St, tc, t);
        gemm({p.dX + k0, K, n0 == 0 ? 0.0f : 1.0f}, M, kw, t.rows, 1.0f, {p.dY + n0, N}, {Wt, tc});
        gemm({Wt, tc, 0.0f}, t.rows, kw, M, 1.0f, {p.dY + n0, N, CblasTrans}, {p.X + k0, K});
        on_grad(static_cast<const float*>(Wt), static_cast<const float*>(St), t);
        mul_tile(Wt, Wt, Lt, tc, t);  // dS = dW_hat (.) L: codes are constants of this derivative
        gemm({p.dA + k0, K, 1.0f}, r, kw, t.rows, 1.0f, {p.B + n0 * r, r, CblasTrans}, {Wt, tc});
        gemm({dB_part + n0 * r, r, 1.0f}, t.rows, r, kw, 1.0f, {Wt, tc}, {p.A + k0, K, CblasTrans});
      }
    }
  }
  // Thread order, not completion order: deterministic.
  for (int th = 0; th < team; ++th)
    for (int64_t i = 0; i < N * r; ++i) p.dB[i] += partials[th * N * r + i];
}

}  // namespace lords::train::cpu::detail
