// One linear layer of the trainable model (train_model.h), Y (M, N) = X (M, K) W^T (+ bias), in
// one of five kinds, each a thin dispatcher over the backward ops of this module:
//   Dense      frozen dense W (N, K) (ops::cpu::matmul / ref::linear_fwd; backward dX only)
//   Quantized  frozen quantized W_hat = level[Q] (.) S, S = B A or block scales (qmatmul;
//   qlinear_dx) Lords      the PEFT path: codes Q frozen, B (N, r) and A (r, K) train
//   (qlinear_grad.h) FakeQuant  the QAT path: latent W (N, K), B, A train through fake quantization
//   (fake_quant.h) Lora       QLoRA: frozen quantized base plus adapters A (r, K), B (N, r)
//   (lora_linear.h)
// Bias (qwen2 q/k/v) is frozen in every kind. Contract as the ops: backward OVERWRITES dX and
// ACCUMULATES (+=) the parameter gradients. What the backward needs beyond X is the forward's
// LinearCache (QAT codes, LoRA X A^T), owned by the caller so activation checkpointing can reuse
// one cache for every layer.
// Real is float (Backend Ref or Cpu) or double (Backend Ref only: the fp64 gradient check).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lords/ops/qmatmul.h"
#include "lords/runtime/backend.h"
#include "lords/train/fake_quant.h"
#include "lords/train/lora_linear.h"
#include "lords/train/qlinear_common.h"

namespace lords::train {

enum class LinearKind { Dense, Quantized, Lords, FakeQuant, Lora };

// QAT schedule (LoRDS.md §1.5, train_w_after_n_steps): B, A alone first, then W joins.
enum class QatPhase { ScalesOnly, Joint };

// What every linear of one model runs with.
struct LinearContext {
  runtime::Backend backend = runtime::Backend::Cpu;
  QLinearTiles tiles;                    // cpu tiled backward
  SteRange ste = SteRange::ZeroOutside;  // FakeQuant
  QatPhase qat_phase = QatPhase::Joint;  // FakeQuant: ScalesOnly leaves dW at zero
};

// The forward's saves for the backward of one linear.
template <class Real>
struct LinearCache {
  std::vector<uint8_t> codes;  // FakeQuant: (N, K) codes chosen by the forward
  std::vector<Real> xa;        // Lora: (M, r) X A^T
};

// Which optimizer group a trainable tensor belongs to.
enum class ParamRole { Scale, Latent, Lora };

// A trainable tensor of a linear: views into the linear's own buffers.
template <class Real>
struct ParamRef {
  std::string name;  // "<hf weight name>.lords_B" | .lords_A | .latent | .lora_A | .lora_B
  ParamRole role = ParamRole::Scale;
  Real* value = nullptr;  // (size); Real may be const (a read-only view)
  Real* grad = nullptr;   // (size)
  int64_t size = 0;
};

template <class Real>
class TrainableLinear {
 public:
  TrainableLinear() = default;
  // name: the HF weight name ("model.layers.0.self_attn.q_proj.weight"). W (N, K), bias (N).
  static TrainableLinear dense(std::string name,
                               std::shared_ptr<const std::vector<Real>> W,
                               int64_t N,
                               int64_t K,
                               std::optional<std::vector<Real>> bias);
  // A quantized weight (copied out of the view q). kind: Quantized or Lora (frozen base; Lora
  // adapters start as lora_init with `seed`, see set_lora), Lords or FakeQuant (LowRank only; the
  // latent W of FakeQuant starts at the dequantized W_hat). Backend Ref keeps unpacked codes too.
  static TrainableLinear quantized(std::string name,
                                   const ops::QWeight& q,
                                   LinearKind kind,
                                   std::optional<std::vector<Real>> bias,
                                   runtime::Backend backend);

  const std::string& name() const { return name_; }
  LinearKind kind() const { return kind_; }
  int64_t N() const { return N_; }
  int64_t K() const { return K_; }
  bool is_quantized() const { return kind_ != LinearKind::Dense; }

  // Lora: adapters of rank r with scaling alpha / r; A (r, K), B (N, r) given, or (null) peft's
  // init from seed (lora_init: A uniform, B = 0).
  void set_lora(int64_t r, float alpha, const float* A, const float* B, uint64_t seed);
  int64_t lora_rank() const { return lora_r_; }
  float lora_alpha() const { return lora_alpha_; }
  // FakeQuant: the latent W (N, K) from a float model instead of W_hat.
  void set_latent(const float* W);

  // Y (M, N) overwritten; cache written for the backward; X (M, K).
  void forward(
      Real* Y, LinearCache<Real>& cache, const Real* X, int64_t M, const LinearContext& ctx) const;
  // dX (M, K) overwritten; parameter grads accumulated; dY (M, N), X (M, K) and cache as the
  // forward left them.
  void backward(Real* dX,
                const Real* dY,
                const Real* X,
                const LinearCache<Real>& cache,
                int64_t M,
                const LinearContext& ctx);

  std::vector<ParamRef<Real>> params();
  std::vector<ParamRef<const Real>> params() const;
  int64_t trainable_count() const;  // total size of params()
  void zero_grad();

  // For saving: the frozen codes packed as the checkpoint stores them (N, packed_row_bytes(K,
  // bits); empty for FakeQuant, whose codes follow W), the codebook levels (2^bits), and B (N, r),
  // A (r, K) / the latent W (N, K) / the adapters.
  const std::vector<uint8_t>& packed_codes() const { return packed_; }
  const std::vector<Real>& levels() const { return levels_; }
  int bits() const { return bits_; }
  int64_t rank() const { return r_; }
  const std::vector<Real>& B() const { return B_; }
  const std::vector<Real>& A() const { return A_; }
  const std::vector<Real>& latent() const { return W_; }
  const std::vector<Real>& lora_A() const { return lA_; }
  const std::vector<Real>& lora_B() const { return lB_; }
  // The frozen base as the qmatmul kernels take it (packed codes, levels, B, A or block scales; the codes
  // are null for FakeQuant). Real = float only.
  ops::QWeight qweight() const;
  const std::vector<Real>* dense_weight() const { return dense_.get(); }  // Dense: (N, K), else null
  const std::optional<std::vector<Real>>& bias() const { return bias_; }

 private:
  ref::UnpackedWeight<Real> unpacked() const;
  FakeQuantWeight<Real> fake_quant_weight() const;
  LoraAdapter<Real> adapter() const;
  void add_bias(Real* Y, int64_t M) const;
  template <class P, class Self>
  static std::vector<P> collect_params(Self& l);

  std::string name_;
  LinearKind kind_ = LinearKind::Dense;
  int64_t N_ = 0, K_ = 0;
  std::shared_ptr<const std::vector<Real>> dense_;  // Dense: (N, K), shared with a tied embedding
  // Quantized base (all kinds but Dense).
  ops::QScaleKind scale_kind_ = ops::QScaleKind::LowRank;
  int bits_ = 4;
  std::vector<uint8_t> packed_;  // (N, packed_row_bytes(K, bits))
  std::vector<uint8_t> codes_;   // (N, K) one per byte; Backend Ref only
  std::vector<Real> levels_;     // (2^bits)
  int64_t r_ = 0, G_ = 0;
  std::vector<Real> B_, A_;    // LowRank: (N, r), (r, K)
  std::vector<Real> scales_;   // Block: (N, ceil(K / G))
  std::vector<Real> gB_, gA_;  // Lords, FakeQuant
  std::vector<Real> W_, gW_;   // FakeQuant: latent (N, K)
  int64_t lora_r_ = 0;
  float lora_alpha_ = 0;
  std::vector<Real> lA_, lB_, glA_, glB_;  // Lora: (r, K), (N, r)
  std::optional<std::vector<Real>> bias_;  // (N)
};

}  // namespace lords::train
