// qmatmul on the GPU: Y (M, N) = X (M, K) · W_hat^T for a quantized weight that is never
// materialized whole (except by the large-M path, which dequantizes slabs into a reused buffer for
// cuBLAS), with W_hat[n,k] = level[Q[n,k]] * S[n,k] and S = B A (LowRank) or block scales (Block),
// exactly as ops::ref::qmatmul (the spec) defines it.
//
// GpuQWeight holds the weight in the kernels' layout (gpu/fragment_layout.h): codes permuted so that
// each thread's 16-byte load is its tensor-core fragment, B (Np, rp) and A^T (Kp, rp) in the
// activation type, block scales (Np, Kp/G) likewise. X is fp16 or bf16, Y fp32; both device memory.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "lords/cuda/device_buffer.h"
#include "lords/ops/qmatmul.h"

namespace lords::cuda {

enum class ActType { F16, BF16 };
// Largest rank the fused kernels hold in registers is 16 * this.
constexpr int qmm_max_rank_chunks() { return 4; }
const char* act_type_name(ActType t);
// The 16 bits of v rounded to nearest in the activation type.
uint16_t act_bits(float v, ActType t);

// Which kernel family runs a call (auto picks by M; the bench forces each).
enum class QmmPath { Auto, Fused, DequantGemm };

class GpuQWeight {
 public:
  GpuQWeight() = default;
  // Re-lays out and uploads a host weight (checkpoint layout, fp32 scales) for activations of type
  // `act`. Throws Error{BadShape} where ops::qmatmul_check would, Error{Unsupported} on rank > 64
  // or a block size that is not a multiple of 16.
  static GpuQWeight upload(const ops::QWeight& w, ActType act);
  // A device-side copy (benchmarks rotate copies so that repeated calls cannot hit in L2).
  GpuQWeight clone() const;

  ops::QScaleKind kind() const { return kind_; }
  ActType act() const { return act_; }
  int64_t N() const { return N_; }
  int64_t K() const { return K_; }
  int bits() const { return bits_; }
  int64_t rank() const { return r_; }
  int64_t group() const { return G_; }
  // Bytes a call streams from device memory: packed codes + scale parameters as stored (16-bit).
  int64_t stream_bytes() const;

  // Device views for the kernels (gpu/ layout; padded sizes Np, Kp, rp).
  struct View {
    ops::QScaleKind kind;
    int bits;
    int64_t N, K, Np, Kp;
    int rp;             // LowRank: rank padded to a multiple of 16 (zero columns/rows)
    int r;              // LowRank: the rank itself
    int G;              // Block
    const uint4* codes; // fragment layout
    const void* B;      // (Np, rp) act type
    const void* AT;     // (Kp, rp) act type
    const void* scales; // (Np, Kp / G) act type
    float levels[16];
  };
  View view() const;

 private:
  ops::QScaleKind kind_ = ops::QScaleKind::LowRank;
  ActType act_ = ActType::F16;
  int64_t N_ = 0, K_ = 0, Np_ = 0, Kp_ = 0, r_ = 0, G_ = 0;
  int rp_ = 0, bits_ = 4;
  std::vector<float> levels_;
  DeviceBuffer<uint8_t> codes_;
  DeviceBuffer<uint16_t> B_, AT_, scales_;  // 16-bit values of the activation type
};

// Scratch reused between calls on one stream: the DequantGemm path's two slabs of fp16/bf16 weights,
// and the Hopper prefill kernel's stream-K flags (zero between calls). One workspace serves one
// stream at a time.
class QmmWorkspace {
 public:
  QmmWorkspace() = default;
  ~QmmWorkspace();
  QmmWorkspace(const QmmWorkspace&) = delete;
  QmmWorkspace& operator=(const QmmWorkspace&) = delete;
  void* slab(int i, size_t bytes);
  void* cublas();  // cublasHandle_t, created on first use
  cudaStream_t side_stream();
  cudaEvent_t event(int i);
  // The flags, zeroed on `stream` when first made; their count.
  int* flags(cudaStream_t stream);
  int64_t flag_count() const { return int64_t(flags_.size()); }

 private:
  DeviceBuffer<uint8_t> slab_[2];
  DeviceBuffer<int> flags_;
  void* cublas_ = nullptr;
  cudaStream_t side_ = nullptr;
  cudaEvent_t events_[4] = {};
};

// Token count from which QmmPath::Auto takes DequantGemm for w (when given a workspace).
int64_t qmatmul_dequant_gemm_min_tokens(const GpuQWeight& w);

// Y (M, N) fp32 = X (M, K) · W_hat^T, on `stream`. X's type must match w.act(). Y and X device
// row-major, not overlapping. ws may be null for the Fused path.
void qmatmul(float* Y, const void* X, int64_t M, const GpuQWeight& w, cudaStream_t stream,
             QmmWorkspace* ws = nullptr, QmmPath path = QmmPath::Auto);

// The kernel a call with M tokens runs (with a workspace, for Auto): "one-token", "decode", "wgmma"
// (Hopper prefill), "fused" (prefill elsewhere) or "dequant+cublas" (bench tables name it).
const char* qmatmul_kernel_name(int64_t M, const GpuQWeight& w, QmmPath path = QmmPath::Auto);

// W_hat (N, K) in the activation type, row-major: what the DequantGemm path feeds cuBLAS, and the
// dequantization the tests compare with the CPU. rows [n0, n0 + rows).
void dequantize(void* W, const GpuQWeight& w, int64_t n0, int64_t rows, cudaStream_t stream);

}  // namespace lords::cuda
