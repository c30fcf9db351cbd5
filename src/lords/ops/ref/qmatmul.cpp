// Reference qmatmul, the spec of every backend: Y (M, N) = X (M, K) · W_hat^T with
//   W_hat[n,k] = level[Q[n,k]] * S[n,k],  S[n,k] = sum_j B[n,j] A[j,k] (fp32, j = 0..r-1)  or
//   scales[n, k/G].
// Each code is read straight from the packed bitstream (docs/FORMAT.md "Code packing"), one row of
// W_hat is rebuilt at a time, and the dot products accumulate in fp64. Scalar and single-threaded
// on purpose. Also holds the op's validation (qmatmul_check) and byte count, shared by all
// backends.
#include "lords/ops/qmatmul.h"

#include <vector>

#include "lords/core/error.h"
#include "lords/quant/blockwise.h"
#include "lords/quant/pack.h"

namespace lords::ops {

void qmatmul_check(const QWeight& w, int64_t M) {
  LORDS_CHECK(M >= 1, ErrorKind::BadShape, "[qmatmul] M (tokens) must be >= 1, got {}", M);
  LORDS_CHECK(w.N >= 1 && w.K >= 1,
              ErrorKind::BadShape,
              "[qmatmul] weight shape [{}, {}], expected N, K >= 1",
              w.N,
              w.K);
  LORDS_CHECK(w.bits >= 2 && w.bits <= 4,
              ErrorKind::BadShape,
              "[qmatmul] bits {}, expected 2, 3 or 4",
              w.bits);
  LORDS_CHECK(w.codes && w.levels, ErrorKind::BadShape, "[qmatmul] codes or levels missing");
  if (w.kind == QScaleKind::LowRank) {
    LORDS_CHECK(
        w.r >= 1, ErrorKind::BadShape, "[qmatmul] low-rank scale rank {}, expected >= 1", w.r);
    LORDS_CHECK(w.B && w.A, ErrorKind::BadShape, "[qmatmul] low-rank scale: B or A missing");
  } else {
    LORDS_CHECK(w.G >= 1, ErrorKind::BadShape, "[qmatmul] block size {}, expected >= 1", w.G);
    LORDS_CHECK(w.scales, ErrorKind::BadShape, "[qmatmul] block scales missing");
  }
}

int64_t qweight_bytes(const QWeight& w) {
  const int64_t codes = w.N * quant::packed_row_bytes(w.K, w.bits);
  const int64_t scales =
      w.kind == QScaleKind::LowRank ? w.r * (w.N + w.K) : w.N * quant::num_blocks(w.K, w.G);
  return codes + scales * static_cast<int64_t>(sizeof(float));
}

namespace ref {
namespace {

// Code k of a packed row: bits [k*bits, (k+1)*bits) of an LSB-first stream; a 3-bit code may
// straddle two bytes, and the second byte is read only when it does (the last byte of a row may be
// the last of the array).
int code_at(const uint8_t* row, int64_t k, int bits) {
  const int64_t bit = k * bits;
  const int shift = static_cast<int>(bit % 8);
  unsigned v = row[bit / 8];
  if (shift + bits > 8) v |= static_cast<unsigned>(row[bit / 8 + 1]) << 8;
  return static_cast<int>((v >> shift) & ((1u << bits) - 1));
}

// Scale S[n,k]: the low-rank product summed in fp32 in order j = 0..r-1 (the checkpoint's
// definition), or the block scale.
float scale_at(const QWeight& w, int64_t n, int64_t k) {
  if (w.kind == QScaleKind::Block) return w.scales[n * quant::num_blocks(w.K, w.G) + k / w.G];
  float s = 0.0f;
  for (int64_t j = 0; j < w.r; ++j) s += w.B[n * w.r + j] * w.A[j * w.K + k];
  return s;
}

}  // namespace

void qmatmul(float* Y, const float* X, int64_t M, const QWeight& w) {
  LORDS_ASSERT(M >= 1 && w.N >= 1 && w.K >= 1 && w.bits >= 2 && w.bits <= 4);
  LORDS_ASSERT(w.kind == QScaleKind::LowRank ? (w.r >= 1 && w.B && w.A)
                                             : (w.G >= 1 && w.scales != nullptr));
  const int64_t N = w.N, K = w.K;
  const int64_t row_bytes = quant::packed_row_bytes(K, w.bits);
  std::vector<float> w_row(static_cast<size_t>(K));  // one row of W_hat
  for (int64_t n = 0; n < N; ++n) {
    const uint8_t* codes = w.codes + n * row_bytes;
    for (int64_t k = 0; k < K; ++k)
      w_row[k] = w.levels[code_at(codes, k, w.bits)] * scale_at(w, n, k);
    for (int64_t m = 0; m < M; ++m) {
      // fp64: the reference must not carry the summation-order error that it is checked against.
      double acc = 0.0;
      for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(w_row[k]) * X[m * K + k];
      Y[m * N + n] = static_cast<float>(acc);
    }
  }
}

}  // namespace ref
}  // namespace lords::ops
