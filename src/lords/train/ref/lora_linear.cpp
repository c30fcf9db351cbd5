// Reference LoRA-on-quantized-base linear (the spec, see lora_linear.h): scalar loops in T with
// fp64 sums; the base goes through ref::qlinear_fwd / ref::qlinear_dx. Also holds lora_linear_check
// and lora_init, shared by every backend.
#include "lords/train/lora_linear.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "lords/core/error.h"

namespace lords::train {

void lora_linear_check(const ops::QWeight& base,
                       const LoraAdapter<float>& lora,
                       int64_t M,
                       const QLinearTiles& tiles) {
  ops::qmatmul_check(base, M);
  LORDS_CHECK(
      lora.r >= 1, ErrorKind::BadShape, "[lora_linear] adapter rank {}, expected >= 1", lora.r);
  LORDS_CHECK(lora.A && lora.B, ErrorKind::BadShape, "[lora_linear] adapter A or B missing");
  qlinear_tiles_check(tiles);
}

void lora_init(float* A, float* B, int64_t N, int64_t K, int64_t r, uint64_t seed) {
  LORDS_CHECK(N >= 1 && K >= 1 && r >= 1,
              ErrorKind::BadShape,
              "[lora_init] N {}, K {}, r {}: expected all >= 1",
              N,
              K,
              r);
  // peft: kaiming_uniform_(A, a = sqrt(5)): gain sqrt(2 / (1 + 5)), bound = gain sqrt(3 / fan_in)
  // = 1 / sqrt(fan_in), fan_in = K.
  const double bound = 1.0 / std::sqrt(static_cast<double>(K));
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < r * K; ++i) {
    const double u = static_cast<double>(rng() >> 40) * 0x1.0p-24;  // [0, 1), exact in fp32
    A[i] = static_cast<float>(bound * (2.0 * u - 1.0));
  }
  std::fill(B, B + N * r, 0.0f);  // the adapted layer starts as the base
}

namespace ref {

template <class T>
void lora_linear_fwd(
    T* Y, T* XA, const T* X, int64_t M, const UnpackedWeight<T>& base, const LoraAdapter<T>& lora) {
  LORDS_ASSERT(lora.r >= 1 && lora.A && lora.B);
  const int64_t N = base.N, K = base.K, r = lora.r;
  const double s = static_cast<double>(lora.scaling());
  qlinear_fwd(Y, X, M, base);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t j = 0; j < r; ++j) {  // XA[m,j] = sum_k X[m,k] A[j,k]
      double acc = 0.0;
      for (int64_t k = 0; k < K; ++k)
        acc += static_cast<double>(X[m * K + k]) * static_cast<double>(lora.A[j * K + k]);
      XA[m * r + j] = static_cast<T>(acc);
    }
    for (int64_t n = 0; n < N; ++n) {  // Y[m,n] += s sum_j XA[m,j] B[n,j]
      double acc = 0.0;
      for (int64_t j = 0; j < r; ++j)
        acc += static_cast<double>(XA[m * r + j]) * static_cast<double>(lora.B[n * r + j]);
      Y[m * N + n] = static_cast<T>(static_cast<double>(Y[m * N + n]) + s * acc);
    }
  }
}

template <class T>
void lora_linear_bwd(const LoraGrads<T>& g,
                     const T* dY,
                     const T* X,
                     const T* XA,
                     int64_t M,
                     const UnpackedWeight<T>& base,
                     const LoraAdapter<T>& lora) {
  LORDS_ASSERT(lora.r >= 1 && lora.A && lora.B && g.dX && g.dA && g.dB);
  const int64_t N = base.N, K = base.K, r = lora.r;
  const double s = static_cast<double>(lora.scaling());
  qlinear_dx(g.dX, dY, M, base);                             // the frozen base's term of dX
  std::vector<double> dyb(static_cast<size_t>(M * r), 0.0);  // dY B (M, r)
  for (int64_t m = 0; m < M; ++m)
    for (int64_t j = 0; j < r; ++j)
      for (int64_t n = 0; n < N; ++n)
        dyb[m * r + j] +=
            static_cast<double>(dY[m * N + n]) * static_cast<double>(lora.B[n * r + j]);
  for (int64_t m = 0; m < M; ++m)  // dX += s dYB A
    for (int64_t k = 0; k < K; ++k) {
      double acc = 0.0;
      for (int64_t j = 0; j < r; ++j)
        acc += dyb[m * r + j] * static_cast<double>(lora.A[j * K + k]);
      g.dX[m * K + k] = static_cast<T>(static_cast<double>(g.dX[m * K + k]) + s * acc);
    }
  for (int64_t n = 0; n < N; ++n)  // dB[n,j] += s sum_m dY[m,n] XA[m,j]
    for (int64_t j = 0; j < r; ++j) {
      double acc = 0.0;
      for (int64_t m = 0; m < M; ++m)
        acc += static_cast<double>(dY[m * N + n]) * static_cast<double>(XA[m * r + j]);
      g.dB[n * r + j] += static_cast<T>(s * acc);
    }
  for (int64_t j = 0; j < r; ++j)  // dA[j,k] += s sum_m dYB[m,j] X[m,k]
    for (int64_t k = 0; k < K; ++k) {
      double acc = 0.0;
      for (int64_t m = 0; m < M; ++m) acc += dyb[m * r + j] * static_cast<double>(X[m * K + k]);
      g.dA[j * K + k] += static_cast<T>(s * acc);
    }
}

template void lora_linear_fwd<float>(
    float*, float*, const float*, int64_t, const UnpackedWeight<float>&, const LoraAdapter<float>&);
template void lora_linear_fwd<double>(double*,
                                      double*,
                                      const double*,
                                      int64_t,
                                      const UnpackedWeight<double>&,
                                      const LoraAdapter<double>&);
template void lora_linear_bwd<float>(const LoraGrads<float>&,
                                     const float*,
                                     const float*,
                                     const float*,
                                     int64_t,
                                     const UnpackedWeight<float>&,
                                     const LoraAdapter<float>&);
template void lora_linear_bwd<double>(const LoraGrads<double>&,
                                      const double*,
                                      const double*,
                                      const double*,
                                      int64_t,
                                      const UnpackedWeight<double>&,
                                      const LoraAdapter<double>&);

}  // namespace ref
}  // namespace lords::train
