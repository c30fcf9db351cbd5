// One linear layer on the GPU: Y (M, N) fp32 = X (M, K) fp16 · W^T (+ bias), uploaded from a host
// runtime::Linear:
//   dense      W as fp16 (N, K), cuBLAS (cuda::matmul_f16);
//   quantized  cuda::GpuQWeight (packed codes + fp16 scales, never materialized), cuda::qmatmul;
//   fallback   a quantized weight the GPU kernels do not take (GpuQWeight::upload says Unsupported:
//              rank > 64, a block size not a multiple of 16) is dequantized once on the host, exactly
//              as ops::ref::qmatmul defines W_hat, and runs dense. Same numbers, more memory.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>
#include <optional>
#include <string>

#include "lords/cuda/blas_handle.h"
#include "lords/cuda/device_buffer.h"
#include "lords/cuda/qmatmul.h"
#include "lords/runtime/linear.h"

namespace lords::runtime {

class GpuLinear {
 public:
  enum class Kind { Dense, Quantized, Dequantized };

  GpuLinear() = default;
  // name (for errors) e.g. "blk.3.attn_q.weight".
  static GpuLinear upload(const Linear& host, const std::string& name);

  int64_t N() const { return N_; }
  int64_t K() const { return K_; }
  Kind kind() const { return kind_; }

  // Y (M, N) fp32, X (M, K) fp16, device memory, on blas.stream(); Y must not overlap X.
  void forward(float* Y, const __half* X, int64_t M, const cuda::BlasHandles& blas, cuda::QmmWorkspace* qmm_ws) const;

 private:
  Kind kind_ = Kind::Dense;
  int64_t N_ = 0, K_ = 0;
  cuda::DeviceBuffer<uint16_t> W_;  // Dense / Dequantized: (N, K) fp16 bits
  std::optional<cuda::GpuQWeight> q_;
  cuda::DeviceBuffer<float> bias_;  // (N), empty without a bias
};

}  // namespace lords::runtime
