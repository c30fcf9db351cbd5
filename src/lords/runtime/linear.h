// One linear layer of the runtime: Y (M, N) = X (M, K) W^T (+ bias), W (N, K) either
//   dense fp32 (ops matmul), shared through a shared_ptr so a tied LM head reuses the embedding, or
//   quantized from a lords checkpoint (ops qmatmul over the packed codes; docs/FORMAT.md): the layer
//   owns the packed codes, the codebook levels and its scales as fp32 (B (N, r) and A (r, K) for
//   method lords, block scales (N, ceil(K/G)) for rtn). W_hat is never materialized.
// Optionally a LoRA branch (a QLoRA fine-tune, lora_adapters.h; train/lora_linear.h):
//   Y = X W^T + (alpha / r) (X A^T) B^T (+ bias),   A (r, K), B (N, r)
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lords/core/tensor.h"
#include "lords/engine/checkpoint.h"
#include "lords/ops/qmatmul.h"
#include "lords/runtime/backend.h"

namespace lords::runtime {

class Linear {
 public:
  Linear() = default;
  // W (N, K); bias (N) if present. Throws Error{BadShape} on a bias of the wrong length.
  static Linear dense(std::shared_ptr<const HostTensor> W, std::optional<std::vector<float>> bias = std::nullopt);
  // The quantized linear `name` (HF name) of checkpoint ck.
  static Linear quantized(const engine::Checkpoint& ck, const std::string& name,
                          std::optional<std::vector<float>> bias = std::nullopt);

  int64_t N() const { return N_; }  // out_features
  int64_t K() const { return K_; }  // in_features
  bool is_quantized() const { return quant_.has_value(); }

  // The weight, for uploading it to another device: the dense W (N, K) (null when quantized), the
  // quantized weight as the kernels see it (only when is_quantized(); a view of this layer's memory),
  // and the bias (N) if any.
  const HostTensor* dense_weight() const { return W_.get(); }
  ops::QWeight quantized_weight() const;
  const std::optional<std::vector<float>>& bias() const { return bias_; }

  // Adds the LoRA branch: A (r, K), B (N, r), scaling alpha / r. Throws Error{BadShape} on other sizes,
  // Error{Usage} on r < 1 or alpha <= 0. name (HF) for messages.
  void set_lora(int64_t r, float alpha, std::vector<float> A, std::vector<float> B, const std::string& name);
  bool has_lora() const { return lora_.has_value(); }

  // Y (M, N), X (M, K); Y must not alias X.
  void forward(float* Y, const float* X, int64_t M, Backend backend) const;

 private:
  struct Quantized {  // what qmatmul reads, owned
    ops::QScaleKind kind = ops::QScaleKind::LowRank;
    int bits = 4;
    std::vector<uint8_t> codes;  // (N, packed_row_bytes(K, bits))
    std::vector<float> levels;   // (2^bits)
    int64_t r = 0;               // LowRank
    std::vector<float> B, A;     // LowRank: (N, r), (r, K)
    int64_t G = 0;               // Block
    std::vector<float> scales;   // Block: (N, ceil(K/G))
  };
  struct Lora {
    int64_t r = 0;
    float alpha = 0;           // scaling alpha / r
    std::vector<float> A, B;   // (r, K), (N, r)
  };
  void set_bias(std::optional<std::vector<float>> bias, const std::string& name);
  // Y (M, N) += (alpha / r) (X A^T) B^T
  void add_lora(float* Y, const float* X, int64_t M, Backend backend) const;

  int64_t N_ = 0, K_ = 0;
  std::shared_ptr<const HostTensor> W_;  // dense: (N, K)
  std::optional<Quantized> quant_;
  std::optional<Lora> lora_;
  std::optional<std::vector<float>> bias_;  // (N)
};

}  // namespace lords::runtime
