// qmatmul: Y (M, N) = X (M, K) · W_hat^T for a quantized weight W_hat (N, K) that is never
// materialized whole:
//   lords:  W_hat[n,k] = level[Q[n,k]] * sum_j B[n,j] A[j,k]      (S = B A, rank r)
//   rtn:    W_hat[n,k] = level[Q[n,k]] * scales[n, k / G]
// Codes arrive bit-packed in the checkpoint layout (quant/pack.h, docs/FORMAT.md).
//   ref::  scalar reference (the spec): rebuilds one weight at a time, fp64 accumulation.
//   cpu::  OpenMP + AVX2/FMA: decode (small M) streams codes row by row with the scale row rebuilt
//          in registers; prefill (large M) dequantizes a tile of rows into a small buffer and runs sgemm.
#pragma once

#include <cstdint>
#include <vector>

#include "lords/quant/codebook.h"

namespace lords::ops {

enum class QScaleKind { LowRank, Block };

// A quantized weight as the kernels see it (views; the owner keeps the memory alive).
struct QWeight {
  QScaleKind kind = QScaleKind::LowRank;
  int64_t N = 0, K = 0;
  int bits = 4;
  const uint8_t* codes = nullptr;  // (N, packed_row_bytes(K, bits))
  const float* levels = nullptr;   // (2^bits)
  // LowRank
  int64_t r = 0;
  const float* B = nullptr;  // (N, r)
  const float* A = nullptr;  // (r, K)
  // Block
  int64_t G = 0;
  const float* scales = nullptr;  // (N, ceil(K/G))
};

// Throws Error{BadShape} (naming the offending field, expected vs got) unless w is a complete,
// consistent weight: N, K >= 1, bits in {2, 3, 4}, codes/levels set, and r >= 1 with B, A (LowRank)
// or G >= 1 with scales (Block); M >= 1. The backends only LORDS_ASSERT these preconditions.
void qmatmul_check(const QWeight& w, int64_t M);
// Bytes the kernels stream per call: packed codes + fp32 scale parameters (B and A, or the block
// scales).
int64_t qweight_bytes(const QWeight& w);

// Y (M, N) = X (M, K) W_hat^T, overwriting Y; X and Y are row-major and must not overlap.
namespace ref {
void qmatmul(float* Y, const float* X, int64_t M, const QWeight& w);
}  // namespace ref
namespace cpu {
// Small M (<= 8 tokens for LowRank, <= 3 for Block: the measured crossovers) takes the decode
// (GEMV) path, larger M the tiled dequantize + sgemm path.
void qmatmul(float* Y, const float* X, int64_t M, const QWeight& w);
}  // namespace cpu

}  // namespace lords::ops
