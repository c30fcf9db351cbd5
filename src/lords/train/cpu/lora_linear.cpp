// CPU LoRA-on-quantized-base linear (fp32; see lora_linear.h for the math): the base through
// ops::cpu::qmatmul (forward) and cpu::qlinear_dx (backward, tiled), the rank-r adapter branch as
// plain cblas_sgemm calls (outside any OpenMP region, so OpenBLAS uses its own threads there).
#include "lords/train/lora_linear.h"

#include "lords/train/cpu/qlinear_tile.h"

namespace lords::train::cpu {

void lora_linear_fwd(float* Y,
                     float* XA,
                     const float* X,
                     int64_t M,
                     const ops::QWeight& base,
                     const LoraAdapter<float>& lora) {
  using detail::gemm;
  LORDS_ASSERT(lora.r >= 1 && lora.A && lora.B);
  const int64_t N = base.N, K = base.K, r = lora.r;
  ops::cpu::qmatmul(Y, X, M, base);
  gemm({XA, r, 0.0f}, M, r, K, 1.0f, {X, K}, {lora.A, K, CblasTrans});            // XA = X A^T
  gemm({Y, N, 1.0f}, M, N, r, lora.scaling(), {XA, r}, {lora.B, r, CblasTrans});  // Y += s XA B^T
}

void lora_linear_bwd(const LoraGrads<float>& g,
                     const float* dY,
                     const float* X,
                     const float* XA,
                     int64_t M,
                     const ops::QWeight& base,
                     const LoraAdapter<float>& lora,
                     const QLinearTiles& tiles) {
  using detail::gemm;
  LORDS_ASSERT(lora.r >= 1 && lora.A && lora.B && g.dX && g.dA && g.dB);
  const int64_t N = base.N, K = base.K, r = lora.r;
  const float s = lora.scaling();
  qlinear_dx(g.dX, dY, M, base, tiles);  // dX = dY W_base
  // dY B lives in the calling thread's partial buffer: qlinear_dx above uses only tile buffers.
  float* dyb = detail::partial_scratch(static_cast<size_t>(M * r));
  gemm({dyb, r, 0.0f}, M, r, N, 1.0f, {dY, N}, {lora.B, r});        // dYB = dY B
  gemm({g.dX, K, 1.0f}, M, K, r, s, {dyb, r}, {lora.A, K});         // dX += s dYB A
  gemm({g.dB, r, 1.0f}, N, r, M, s, {dY, N, CblasTrans}, {XA, r});  // dB += s dY^T XA
  gemm({g.dA, K, 1.0f}, r, K, M, s, {dyb, r, CblasTrans}, {X, K});  // dA += s dYB^T X
}

}  // namespace lords::train::cpu
