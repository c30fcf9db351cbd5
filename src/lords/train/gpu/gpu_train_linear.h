// One linear of the trainable model on the GPU: the device twin of TrainableLinear<float> (same five
// kinds, same contracts: backward OVERWRITES dX and ACCUMULATES the parameter gradients), uploaded from
// a host TrainableLinear. Every product is an fp32 cuBLAS GEMM (cuda::gemm_rm, no TF32), so results
// match the CPU path to fp32 rounding:
//   Dense      Y = X W^T                         dX = dY W
//   Quantized  W_hat = level[Q] (.) S, materialized per call in the shared scratch (S = B A by one GEMM,
//              or the block scales), then as Dense
//   Lords      + dS = (dY^T X) (.) level[Q] one tile of rows at a time (the N x K dS is never whole):
//              dB[rows] += dS A^T, dA += B[rows]^T dS
//   FakeQuant  codes chosen per forward from the latent W and S (cached for the backward), and the
//              straight-through dW += mask (.) dW_hat on each tile
//   Lora       + the adapters: Y += s (X A^T) B^T, and their three backward GEMMs
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "lords/cuda/device_buffer.h"
#include "lords/cuda/quant/gpu_codebook.h"
#include "lords/train/trainable_linear.h"

namespace lords::train {

// Scratch every linear of a model shares (one stream orders the calls): the materialized weight and the
// backward's row tile. Grown on demand.
struct GpuLinearScratch {
  cuda::DeviceBuffer<float> w;       // (N, K) W_hat of the current call
  cuda::DeviceBuffer<float> tile;    // (tile rows, K) dW_hat, then dS
  cuda::DeviceBuffer<float> tile_s;  // (tile rows, K) QAT: S of the tile, for the STE mask
  cuda::DeviceBuffer<float> lora;    // (M, r) LoRA: dY B
};

struct GpuLinearContext {
  cublasHandle_t blas = nullptr;
  cudaStream_t stream = nullptr;
  GpuLinearScratch* scratch = nullptr;
  SteRange ste = SteRange::ZeroOutside;
  QatPhase qat_phase = QatPhase::Joint;
  int64_t tile_elems = int64_t{1} << 24;  // the dS tile holds at most this many floats (64 MiB)
};

// The forward's saves for the backward (one per activation set, as LinearCache).
struct GpuLinearCache {
  cuda::DeviceBuffer<uint8_t> codes;  // FakeQuant: (N, K)
  cuda::DeviceBuffer<float> xa;       // Lora: (M, r)
};

// A trainable tensor on the device, in TrainableLinear::params() order.
struct GpuParam {
  float* value = nullptr;
  float* grad = nullptr;
  int64_t size = 0;
};

class GpuTrainLinear {
 public:
  GpuTrainLinear() = default;
  // shared_dense: the device copy of a Dense weight uploaded already (the tied embedding), else null.
  static GpuTrainLinear upload(const TrainableLinear<float>& host,
                               std::shared_ptr<const cuda::DeviceBuffer<float>> shared_dense = nullptr);

  LinearKind kind() const { return kind_; }
  int64_t N() const { return N_; }
  int64_t K() const { return K_; }

  void forward(float* Y, GpuLinearCache& cache, const float* X, int64_t M, const GpuLinearContext& ctx) const;
  void backward(float* dX, const float* dY, const float* X, const GpuLinearCache& cache, int64_t M,
                const GpuLinearContext& ctx);

  std::vector<GpuParam> params();
  void zero_grad(cudaStream_t stream);

 private:
  // W_hat (N, K) of this call in ctx.scratch->w (Dense: the weight itself). FakeQuant: the forward
  // chooses its codes into choose_into; the backward passes the cached ones as fq_codes.
  const float* weight(const GpuLinearContext& ctx, const uint8_t* fq_codes, uint8_t* choose_into) const;
  // ctx.scratch->* grown for M rows.
  void grow_scratch(const GpuLinearContext& ctx, int64_t M) const;

  LinearKind kind_ = LinearKind::Dense;
  int64_t N_ = 0, K_ = 0;
  std::shared_ptr<const cuda::DeviceBuffer<float>> dense_;  // Dense (N, K)
  ops::QScaleKind scale_kind_ = ops::QScaleKind::LowRank;
  int bits_ = 4;
  cuda::GpuCodebook cb_{};
  cuda::DeviceBuffer<uint8_t> codes_;  // (N, K) one per byte (not FakeQuant)
  cuda::DeviceBuffer<float> levels_;   // (2^bits)
  int64_t r_ = 0, G_ = 0;
  cuda::DeviceBuffer<float> B_, A_, gB_, gA_;  // LowRank (N, r), (r, K); grads for Lords / FakeQuant
  cuda::DeviceBuffer<float> scales_;           // Block (N, ceil(K / G))
  cuda::DeviceBuffer<float> W_, gW_;           // FakeQuant latent (N, K)
  int64_t lora_r_ = 0;
  float lora_scale_ = 0;
  cuda::DeviceBuffer<float> lA_, lB_, glA_, glB_;  // Lora (r, K), (N, r)
  cuda::DeviceBuffer<float> bias_;                 // (N) or empty
};

}  // namespace lords::train
