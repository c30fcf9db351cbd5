// Reference quantized linear forward / input gradient and LoRDS linear backward: the spec the cpu
// kernels are checked against, and the fp64 oracle of the finite-difference tests.
//   Y  = X W_hat^T          dX = dY W_hat          dS[n,k] = L[n,k] sum_m dY[m,n] X[m,k]
//   dB[n,j] += sum_k dS[n,k] A[j,k]                dA[j,k] += sum_n B[n,j] dS[n,k]
// One row of W_hat (or dS) at a time, every sum in fp64, scalar and single-threaded on purpose.
// Also holds the validation shared by the cpu entry points (lords_linear_check,
// qlinear_tiles_check).
#include "lords/train/qlinear_grad.h"

#include <vector>

#include "lords/core/error.h"

namespace lords::train {

void qlinear_tiles_check(const QLinearTiles& tiles) {
  LORDS_CHECK(
      tiles.rows >= 1, ErrorKind::BadShape, "[qlinear] tile rows {}, expected >= 1", tiles.rows);
  LORDS_CHECK(tiles.cols >= 8 && tiles.cols % 8 == 0,
              ErrorKind::BadShape,
              "[qlinear] tile cols {}, expected a positive multiple of 8",
              tiles.cols);
}

void lords_linear_check(const ops::QWeight& w, int64_t M, const QLinearTiles& tiles) {
  ops::qmatmul_check(w, M);
  LORDS_CHECK(w.kind == ops::QScaleKind::LowRank,
              ErrorKind::BadShape,
              "[lords_linear] scale kind Block, expected LowRank (B, A are what trains)");
  qlinear_tiles_check(tiles);
}

namespace ref {

template <class T>
void qlinear_fwd(T* Y, const T* X, int64_t M, const UnpackedWeight<T>& w) {
  LORDS_ASSERT(M >= 1 && w.N >= 1 && w.K >= 1 && w.codes && w.levels);
  const int64_t N = w.N, K = w.K;
  std::vector<T> row(static_cast<size_t>(K));  // W_hat[n, :]
  for (int64_t n = 0; n < N; ++n) {
    dequant_row(row.data(), w, n);
    for (int64_t m = 0; m < M; ++m) {
      double acc = 0.0;  // fp64: the spec must not carry the rounding it is checked against
      for (int64_t k = 0; k < K; ++k)
        acc += static_cast<double>(row[k]) * static_cast<double>(X[m * K + k]);
      Y[m * N + n] = static_cast<T>(acc);
    }
  }
}

template <class T>
void qlinear_dx(T* dX, const T* dY, int64_t M, const UnpackedWeight<T>& w) {
  LORDS_ASSERT(M >= 1 && w.N >= 1 && w.K >= 1 && w.codes && w.levels);
  const int64_t N = w.N, K = w.K;
  // dX[m,k] = sum_n dY[m,n] W_hat[n,k]: row n of W_hat is scattered into every row of the fp64 sum.
  std::vector<double> acc(static_cast<size_t>(M * K), 0.0);
  std::vector<T> row(static_cast<size_t>(K));
  for (int64_t n = 0; n < N; ++n) {
    dequant_row(row.data(), w, n);
    for (int64_t m = 0; m < M; ++m) {
      const double dy = static_cast<double>(dY[m * N + n]);
      for (int64_t k = 0; k < K; ++k) acc[m * K + k] += dy * static_cast<double>(row[k]);
    }
  }
  for (int64_t i = 0; i < M * K; ++i) dX[i] = static_cast<T>(acc[i]);
}

template <class T>
void lords_linear_bwd(
    const LordsLinearGrads<T>& g, const T* dY, const T* X, int64_t M, const UnpackedWeight<T>& w) {
  LORDS_ASSERT(w.kind == ops::QScaleKind::LowRank && w.r >= 1 && w.B && w.A);
  LORDS_ASSERT(g.dX && g.dB && g.dA);
  const int64_t N = w.N, K = w.K, r = w.r;
  qlinear_dx(g.dX, dY, M, w);
  std::vector<double> dA(static_cast<size_t>(r * K),
                         0.0);                     // summed over all n before the += into g.dA
  std::vector<double> ds(static_cast<size_t>(K));  // dS[n, :]
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) {
      double gw = 0.0;  // dW_hat[n,k] = sum_m dY[m,n] X[m,k]
      for (int64_t m = 0; m < M; ++m)
        gw += static_cast<double>(dY[m * N + n]) * static_cast<double>(X[m * K + k]);
      // W_hat = L S elementwise, so dL/dS = dL/dW_hat * L (the codes are constants here).
      ds[k] = gw * static_cast<double>(w.levels[w.codes[n * K + k]]);
    }
    for (int64_t j = 0; j < r; ++j) {
      double db = 0.0;  // S[n,k] = sum_j B[n,j] A[j,k]  =>  dB[n,j] = sum_k dS[n,k] A[j,k]
      const double b = static_cast<double>(w.B[n * r + j]);
      for (int64_t k = 0; k < K; ++k) {
        db += ds[k] * static_cast<double>(w.A[j * K + k]);
        dA[j * K + k] += b * ds[k];  // dA[j,k] = sum_n B[n,j] dS[n,k]
      }
      g.dB[n * r + j] += static_cast<T>(db);
    }
  }
  for (int64_t i = 0; i < r * K; ++i) g.dA[i] += static_cast<T>(dA[i]);
}

// The two precisions the project uses: fp32 (the spec of the cpu kernels) and fp64 (gradcheck).
template void qlinear_fwd<float>(float*, const float*, int64_t, const UnpackedWeight<float>&);
template void qlinear_fwd<double>(double*, const double*, int64_t, const UnpackedWeight<double>&);
template void qlinear_dx<float>(float*, const float*, int64_t, const UnpackedWeight<float>&);
template void qlinear_dx<double>(double*, const double*, int64_t, const UnpackedWeight<double>&);
template void lords_linear_bwd<float>(const LordsLinearGrads<float>&,
                                      const float*,
                                      const float*,
                                      int64_t,
                                      const UnpackedWeight<float>&);
template void lords_linear_bwd<double>(const LordsLinearGrads<double>&,
                                       const double*,
                                       const double*,
                                       int64_t,
                                       const UnpackedWeight<double>&);

}  // namespace ref
}  // namespace lords::train
