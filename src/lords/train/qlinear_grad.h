// Backward of the LoRDS linear, the PEFT path of the paper (LoRDS §3.4; shared/reference/LoRDS.md
// §1.6): the codes Q are frozen and only the scale factors B (N, r), A (r, K) train.
//   forward   Y (M, N) = X (M, K) W_hat^T,   W_hat = L (.) (B A),   L[n,k] = level[Q[n,k]]
//             (ops::cpu::qmatmul on the packed weight; ref::qlinear_fwd in T for gradient checks)
//   backward  dX = dY W_hat                    (M, K)  overwritten (activation grad)
//             dS = (dY^T X) (.) L              (N, K)  never stored whole
//             dB += dS A^T                     (N, r)  accumulated (parameter grad)
//             dA += B^T dS                     (r, K)  accumulated
// ref:: reads unpacked codes (one per byte, UnpackedWeight<T>), works in T and accumulates in fp64.
// cpu:: fp32 on the bit-packed ops::QWeight: see the tiling note in cpu/qlinear_tile.h.
#pragma once

#include <cstdint>

#include "lords/ops/qmatmul.h"
#include "lords/train/qlinear_common.h"

namespace lords::train {

template <class T>
struct LordsLinearGrads {
  T* dX = nullptr;  // (M, K) overwritten
  T* dB = nullptr;  // (N, r) accumulated
  T* dA = nullptr;  // (r, K) accumulated
};

// Throws Error{BadShape} unless w passes ops::qmatmul_check, has a LowRank scale, and tiles are
// valid.
void lords_linear_check(const ops::QWeight& w, int64_t M, const QLinearTiles& tiles);

namespace ref {
// w.kind must be LowRank.
template <class T>
void lords_linear_bwd(
    const LordsLinearGrads<T>& g, const T* dY, const T* X, int64_t M, const UnpackedWeight<T>& w);
}  // namespace ref

namespace cpu {
// w.kind must be LowRank. Deterministic for a given OpenMP thread count (dB's per-thread partials
// are summed in thread order); other thread counts differ in rounding only.
void lords_linear_bwd(const LordsLinearGrads<float>& g,
                      const float* dY,
                      const float* X,
                      int64_t M,
                      const ops::QWeight& w,
                      const QLinearTiles& tiles = {});
}  // namespace cpu

}  // namespace lords::train
