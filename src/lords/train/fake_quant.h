// QAT fake-quantized linear with a LoRDS scale (shared/reference/LoRDS.md §1.5): a latent weight W
// (N, K) trains together with B (N, r), A (r, K).
//   forward   S = B A,  Q = nearest code of W / S,  W_hat = level[Q] * S,  Y (M, N) = X W_hat^T
//             Q follows quant::Codebook::nearest: ties go to the lower level; |S| < kTinyScale
//             (quant/nearest_kernel.h) or a NaN quotient gives the level nearest 0. S keeps its
//             sign (S = B A as in ops::QWeight and the PEFT path, not the |B A| of the author's
//             INT4 QAT). The forward writes Q to an explicit (N, K) cache, one code per byte, for
//             the backward.
//   backward  dW_hat = dY^T X  (never stored whole), and
//             dX  = dY W_hat                          (M, K) overwritten
//             dW += ste(dW_hat)                       (N, K) accumulated: straight-through
//             estimator dS  = dW_hat (.) level[Q]               codes held fixed, as in the PEFT
//             backward dB += dS A^T,  dA += B^T dS             accumulated
// The STE treats level[nearest(x)] as the identity in x = W / S, so W_hat ~ W and dW = dW_hat. By
// default (SteRange::ZeroOutside) the pass-through is cut where x lies outside [level_min,
// level_max] (or |S| < kTinyScale): there the quantizer is saturated, and the author's torchao
// fake-quantizer gets the same zero from its clamp. dS holds Q fixed (no LSQ -W/S term): it is the
// exact gradient of the forward for as long as no code changes, which the tests check by finite
// differences.
#pragma once

#include <cstdint>

#include "lords/train/qlinear_common.h"

namespace lords::train {

enum class SteRange {
  ZeroOutside,  // dW = dW_hat where level_min <= W/S <= level_max, else 0
  PassAll,      // dW = dW_hat everywhere
};

struct FakeQuantOptions {
  SteRange ste = SteRange::ZeroOutside;
  QLinearTiles tiles;  // cpu only
};

template <class T>
struct FakeQuantWeight {
  int64_t N = 0, K = 0, r = 0;
  int bits = 4;
  const T* W = nullptr;       // (N, K) latent weight
  const T* B = nullptr;       // (N, r)
  const T* A = nullptr;       // (r, K)
  const T* levels = nullptr;  // (2^bits) strictly ascending
};

template <class T>
struct FakeQuantGrads {
  T* dX = nullptr;  // (M, K) overwritten
  T* dW = nullptr;  // (N, K) accumulated
  T* dB = nullptr;  // (N, r) accumulated
  T* dA = nullptr;  // (r, K) accumulated
};

// Throws Error{BadShape} (or Error{Format} for the levels) unless the shapes are >= 1, bits in
// {2, 3, 4}, every pointer is set, the levels are finite and strictly ascending, and tiles are
// valid.
void fake_quant_check(const FakeQuantWeight<float>& w, int64_t M, const FakeQuantOptions& opt);

namespace ref {
// W_hat (N, K) materialized and codes (N, K): the fake-quantized weight itself (baking after QAT).
template <class T>
void fake_quant_weight(T* W_hat, uint8_t* codes, const FakeQuantWeight<T>& w);
// Y (M, N) overwritten, codes (N, K) written (the backward's cache).
template <class T>
void fake_quant_linear_fwd(
    T* Y, uint8_t* codes, const T* X, int64_t M, const FakeQuantWeight<T>& w);
// codes: the forward's cache.
template <class T>
void fake_quant_linear_bwd(const FakeQuantGrads<T>& g,
                           const T* dY,
                           const T* X,
                           const uint8_t* codes,
                           int64_t M,
                           const FakeQuantWeight<T>& w,
                           const FakeQuantOptions& opt);
}  // namespace ref

namespace cpu {
// OpenMP over row tiles (each owns its columns of Y and rows of codes), sgemm per tile; codes from
// quant::detail::nearest_codes, the quantizer's own vectorized search.
void fake_quant_linear_fwd(float* Y,
                           uint8_t* codes,
                           const float* X,
                           int64_t M,
                           const FakeQuantWeight<float>& w,
                           const FakeQuantOptions& opt = {});
// The tiled low-rank backward of cpu/qlinear_tile.h with the levels read from the codes cache; dW
// is accumulated tile by tile.
void fake_quant_linear_bwd(const FakeQuantGrads<float>& g,
                           const float* dY,
                           const float* X,
                           const uint8_t* codes,
                           int64_t M,
                           const FakeQuantWeight<float>& w,
                           const FakeQuantOptions& opt = {});
}  // namespace cpu

}  // namespace lords::train
