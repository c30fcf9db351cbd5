// LoRA on a frozen quantized base, the QLoRA baseline of the paper's PEFT comparison (QLoRA:
// Dettmers et al. 2023; peft's lora.Linear): base block-wise NF4 (ops::QWeight Block; any QWeight
// works, a LowRank base gives LoRA on top of LoRDS) plus adapters A (r, K), B (N, r), s = alpha /
// r:
//   forward   XA = X A^T                                  (M, r)  cache for the backward
//             Y  = X W_base^T + s XA B^T                  (M, N)  overwritten
//   backward  dYB = dY B                                  (M, r)  temporary
//             dX  = dY W_base + s dYB A                   (M, K)  overwritten
//             dB += s dY^T XA                             (N, r)  accumulated
//             dA += s dYB^T X                             (r, K)  accumulated
// No dropout (lora_dropout = 0). Init as peft: A ~ kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(K),
// 1/sqrt(K)), B = 0, so the adapted layer starts equal to the base.
#pragma once

#include <cstdint>

#include "lords/ops/qmatmul.h"
#include "lords/train/qlinear_common.h"

namespace lords::train {

template <class T>
struct LoraAdapter {
  int64_t r = 0;
  T alpha = 0;           // scaling s = alpha / r (peft's lora_alpha / r)
  const T* A = nullptr;  // (r, K)
  const T* B = nullptr;  // (N, r)
  T scaling() const { return alpha / static_cast<T>(r); }
};

template <class T>
struct LoraGrads {
  T* dX = nullptr;  // (M, K) overwritten
  T* dA = nullptr;  // (r, K) accumulated
  T* dB = nullptr;  // (N, r) accumulated
};

// Throws Error{BadShape} unless base passes ops::qmatmul_check, r >= 1, A and B are set, and tiles
// are valid.
void lora_linear_check(const ops::QWeight& base,
                       const LoraAdapter<float>& lora,
                       int64_t M,
                       const QLinearTiles& tiles);

// A (r, K) ~ U(-1/sqrt(K), 1/sqrt(K)) from a seeded mt19937_64 (24-bit uniforms, reproducible on
// every platform: no std::uniform_real_distribution), B (N, r) = 0. Both overwritten.
void lora_init(float* A, float* B, int64_t N, int64_t K, int64_t r, uint64_t seed);

namespace ref {
template <class T>
void lora_linear_fwd(
    T* Y, T* XA, const T* X, int64_t M, const UnpackedWeight<T>& base, const LoraAdapter<T>& lora);
template <class T>
void lora_linear_bwd(const LoraGrads<T>& g,
                     const T* dY,
                     const T* X,
                     const T* XA,
                     int64_t M,
                     const UnpackedWeight<T>& base,
                     const LoraAdapter<T>& lora);
}  // namespace ref

namespace cpu {
// ops::cpu::qmatmul for the base, two cblas_sgemm for the adapter branch.
void lora_linear_fwd(float* Y,
                     float* XA,
                     const float* X,
                     int64_t M,
                     const ops::QWeight& base,
                     const LoraAdapter<float>& lora);
// cpu::qlinear_dx (tiled, W_base never stored whole) for the base, cblas_sgemm for the rest.
void lora_linear_bwd(const LoraGrads<float>& g,
                     const float* dY,
                     const float* X,
                     const float* XA,
                     int64_t M,
                     const ops::QWeight& base,
                     const LoraAdapter<float>& lora,
                     const QLinearTiles& tiles = {});
}  // namespace cpu

}  // namespace lords::train
