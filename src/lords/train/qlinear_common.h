// Shared vocabulary of the trainable quantized linears (qlinear_grad.h, fake_quant.h,
// lora_linear.h):
//   W_hat[n,k] = level[Q[n,k]] * S[n,k],   S = B A (LowRank, rank r) or scales[n, k/G] (Block).
// The cpu backends take ops::QWeight (bit-packed codes, fp32). The ref backends take
// UnpackedWeight<T>: the same weight with one code per byte and every float in T (float or double),
// so a gradient check can run the whole layer in fp64 (STYLE 3.6 "Gradcheck") and a test can feed
// ref and cpu the very same codes (quant::unpack_codes of the packed ones).
#pragma once

#include <cstdint>

#include "lords/ops/qmatmul.h"
#include "lords/quant/blockwise.h"

namespace lords::train {

// Tile of W_hat (and of dW_hat = dY^T X, dS) a cpu kernel holds at a time: (rows, cols) floats per
// buffer, three buffers per thread; 128 x 128 x 4 B = 64 KB each, so a thread's tiles stay in L2.
struct QLinearTiles {
  int64_t rows = 128;  // >= 1
  int64_t cols =
      128;  // multiple of 8: 8 codes are `bits` whole bytes, so a column block starts on a byte
};

// Throws Error{BadShape} unless rows >= 1 and cols is a positive multiple of 8.
void qlinear_tiles_check(const QLinearTiles& tiles);

namespace ref {

template <class T>
struct UnpackedWeight {
  ops::QScaleKind kind = ops::QScaleKind::LowRank;
  int64_t N = 0, K = 0;
  int bits = 4;
  const uint8_t* codes = nullptr;  // (N, K), one code per byte, each < 2^bits
  const T* levels = nullptr;       // (2^bits)
  // LowRank
  int64_t r = 0;
  const T* B = nullptr;  // (N, r)
  const T* A = nullptr;  // (r, K)
  // Block
  int64_t G = 0;
  const T* scales = nullptr;  // (N, ceil(K / G))
};

}  // namespace ref

// Fills a weight view (ops::QWeight over packed codes, or ref::UnpackedWeight<T> over one code per
// byte: the same fields) from the vectors that own the data; an empty vector is a null pointer.
template <class View, class Codes, class Vec>
View qweight_view(ops::QScaleKind kind, int64_t N, int64_t K, int bits, const Codes& codes, const Vec& levels,
                  int64_t r, const Vec& B, const Vec& A, int64_t G, const Vec& scales) {
  View w;
  w.kind = kind;
  w.N = N;
  w.K = K;
  w.bits = bits;
  w.codes = codes.data();
  w.levels = levels.data();
  w.r = r;
  w.B = B.empty() ? nullptr : B.data();
  w.A = A.empty() ? nullptr : A.data();
  w.G = G;
  w.scales = scales.empty() ? nullptr : scales.data();
  return w;
}

namespace ref {

// S[n,k]: the low-rank product summed in T in order j = 0..r-1 (ops::ref::qmatmul's order), or the
// block scale.
template <class T>
inline T scale_at(const UnpackedWeight<T>& w, int64_t n, int64_t k) {
  if (w.kind == ops::QScaleKind::Block) return w.scales[n * quant::num_blocks(w.K, w.G) + k / w.G];
  T s = 0;
  for (int64_t j = 0; j < w.r; ++j) s += w.B[n * w.r + j] * w.A[j * w.K + k];
  return s;
}

// Row n of W_hat: row (K).
template <class T>
inline void dequant_row(T* row, const UnpackedWeight<T>& w, int64_t n) {
  for (int64_t k = 0; k < w.K; ++k) row[k] = w.levels[w.codes[n * w.K + k]] * scale_at(w, n, k);
}

// Y (M, N) = X (M, K) W_hat^T, overwritten; dot products accumulate in fp64. Any scale kind.
template <class T>
void qlinear_fwd(T* Y, const T* X, int64_t M, const UnpackedWeight<T>& w);
// dX (M, K) = dY (M, N) W_hat, overwritten: the input gradient of a frozen quantized linear.
template <class T>
void qlinear_dx(T* dX, const T* dY, int64_t M, const UnpackedWeight<T>& w);

}  // namespace ref

namespace cpu {
// dX (M, K) = dY (M, N) W_hat, overwritten, for either scale kind; W_hat is rebuilt one
// (tiles.rows, tiles.cols) tile at a time and never stored whole. OpenMP over column blocks of dX
// (each thread owns whole columns of dX, so no reduction), single-threaded cblas_sgemm per tile.
void qlinear_dx(
    float* dX, const float* dY, int64_t M, const ops::QWeight& w, const QLinearTiles& tiles = {});
}  // namespace cpu

}  // namespace lords::train
