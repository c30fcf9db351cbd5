// The trainable Llama-family model (llama, mistral, qwen2; the forward of runtime/llama_model.h)
// built from a quantized lords checkpoint, for three fine-tuning modes:
//   Peft   LoRDS multiplicative PEFT (LoRDS.md §1.6): every quantized linear keeps its codes Q and
//          trains its scales B, A; the trained B, A are the new checkpoint's scales, no merge.
//   Qat    LoRDS QAT (§1.5): a latent W per quantized linear (W_hat of the checkpoint, or the
//          weights of a float model) trains with B, A through fake quantization and an STE.
//   Qlora  the QLoRA baseline: a frozen quantized base (NF4 block-wise, method rtn) plus LoRA
//          adapters (rank r, alpha) on every quantized linear of the decoder blocks.
// Everything else (embeddings, norms, biases, unquantized linears, the head) is frozen.
// forward_backward() computes the masked mean cross-entropy of B sequences of T tokens (each from
// position 0, no packing) and ACCUMULATES the gradients of grad_scale times that mean into the
// trainable parameters, so callers can accumulate over micro-batches; zero_grad() clears them.
// Memory: with Recompute::Layers (activation checkpointing) only each layer's input (M, D) is
// kept, and the layer's forward runs again during the backward; gradients are bit-identical to
// Recompute::Off, which keeps every layer's activations. Logits exist head_rows rows at a time.
// Real is float (Backend Ref or Cpu) or double (Backend Ref: the fp64 oracle of the gradient
// tests). Not reentrant: one call at a time per model (it owns its workspace).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "lords/core/atomic_output.h"
#include "lords/model/model_config.h"
#include "lords/runtime/backend.h"
#include "lords/runtime/causal_lm.h"
#include "lords/train/adamw.h"
#include "lords/train/grad_cross_entropy.h"
#include "lords/train/trainable_linear.h"

namespace lords::train {

enum class TuneMode { Peft, Qat, Qlora };
TuneMode tune_mode_from_name(const std::string& name);  // "peft" | "qat" | "qlora"; Error{Usage}
const char* tune_mode_name(TuneMode m);

// Activation checkpointing: Layers keeps each layer's input only and recomputes the rest.
enum class Recompute { Off, Layers };

// Written next to the base checkpoint's files by a Qlora save: "<hf weight name>.lora_A" (r, K)
// and ".lora_B" (N, r) in F32, metadata format "lords-lora", "lora.rank", "lora.alpha".
inline constexpr const char* kAdaptersFile = "adapters.safetensors";
inline constexpr const char* kAdaptersFormat = "lords-lora";

struct TrainModelOptions {
  TuneMode mode = TuneMode::Peft;
  runtime::Backend backend = runtime::Backend::Cpu;
  // Cuda: forward and backward run on the GPU (gpu/gpu_train_engine.h) while the parameters, the
  // optimizer and saving stay on the host; float with Backend Cpu only.
  runtime::Device device = runtime::Device::Cpu;
  bool tf32 = false;  // Cuda: GEMMs on TF32 tensor cores (faster; products rounded to 10-bit mantissas)
  Recompute recompute = Recompute::Layers;
  // Qlora, when the directory holds no adapters yet (saved adapters bring their own rank/alpha).
  // The QLoRA paper uses r 64, alpha 16 on every linear.
  int64_t lora_rank = 16;
  float lora_alpha = 32.0f;  // scaling alpha / rank
  uint64_t lora_seed = 0;    // the i-th adapted linear (model order) draws its A from lora_seed + i
  // Qat: an HF directory (or .gguf) of the unquantized model whose weights seed the latent W;
  // empty: W starts at the checkpoint's W_hat.
  std::string qat_base;
  SteRange ste = SteRange::ZeroOutside;
  QLinearTiles tiles;       // cpu tiled backward of the quantized linears
  int64_t head_rows = 256;  // logits rows at a time (the (M, V) logits are never whole)
};

// Optimizer groups: "scales" (B, A of Peft/Qat), "latent" (W of Qat), "lora" (Qlora adapters).
struct GroupOptions {
  float scales_lr_scale = 1.0f;  // the author's QAT uses 4 (qparam_lr_rate, LoRDS.md §1.5)
  float scales_weight_decay = 0.0f;
  float latent_lr_scale = 1.0f;
  float latent_weight_decay = 0.0f;  // note: decays W even while QatPhase::ScalesOnly holds dW at 0
  float lora_lr_scale = 1.0f;
  float lora_weight_decay = 0.0f;
};

class GpuTrainEngine;

template <class Real>
class TrainModel {
 public:
  // dir: a lords checkpoint (Peft, Qat: method lords; Qlora: any method), or for Qlora a saved
  // Qlora output (the base checkpoint's files plus kAdaptersFile). Throws Error naming the path
  // (Usage for a mode the checkpoint cannot serve or double with Backend Cpu).
  static TrainModel load(const std::string& dir, const TrainModelOptions& opt);

  const model::ModelConfig& config() const { return config_; }
  TuneMode mode() const { return opt_.mode; }
  const TrainModelOptions& options() const { return opt_; }
  void set_recompute(Recompute r) { opt_.recompute = r; }
  void set_qat_phase(QatPhase p) { ctx_.qat_phase = p; }
  QatPhase qat_phase() const { return ctx_.qat_phase; }

  // tokens, targets (B, T): targets < 0 are ignored (HF's -100); loss_weights (B, T) >= 0 or null
  // (all 1). Returns the weighted mean loss and the counted weight; accumulates grad_scale * d
  // loss / d param. No counted token: loss 0, gradients untouched. Throws Error{Usage} on ids
  // outside [0, V), negative or non-finite weights, T beyond max_position_embeddings, B or T < 1;
  // Error{Unsupported} on T beyond a sliding window.
  CrossEntropyResult forward_backward(const int32_t* tokens,
                                      const int32_t* targets,
                                      const float* loss_weights,
                                      int64_t B,
                                      int64_t T,
                                      float grad_scale = 1.0f);
  // The same loss, forward only (no gradients, no saved activations).
  CrossEntropyResult eval_loss(const int32_t* tokens,
                               const int32_t* targets,
                               const float* loss_weights,
                               int64_t B,
                               int64_t T);
  // logits (B, T, V) of the tuned model (evaluation; a Qlora model includes its adapters).
  void forward_logits(Real* logits, const int32_t* tokens, int64_t B, int64_t T);

  void zero_grad();
  // Every trainable tensor, in model order (layers, then the head), with its gradient.
  std::vector<ParamRef<Real>> params();
  int64_t trainable_count() const;
  // The AdamW groups over params() (only non-empty groups).
  std::vector<ParamGroup> param_groups(
      const GroupOptions& g = {}) requires std::is_same_v<Real, float>;

  // Resume support: "param.<tensor name>" -> values, for every trainable tensor (the optimizer's
  // state_arrays() may share the map). load_param_arrays checks every name and size first
  // (Error{Format}) and changes nothing unless all match; other names are ignored.
  NamedArrays param_arrays() const;
  void load_param_arrays(const NamedArrays& arrays);

  // Peft, Qat: a lords checkpoint in the PTQ format (same tensor names, dtypes, metadata plus
  // "lords.tuned"), B, A rounded to the stored scale dtype; Qat recomputes the codes as
  // nearest(W / (B A)) with the rounded scales, so the runtime dequantizes exactly what is stored.
  // Qlora: the base checkpoint's files plus kAdaptersFile. Written atomically (temp dir + rename);
  // the source checkpoint must still exist. Existing::Refuse throws on a non-empty out_dir.
  void save(const std::string& out_dir,
            AtomicDir::Existing existing = AtomicDir::Existing::Refuse) const;

 private:
  friend class GpuTrainEngine;
  enum Slot { kQ, kK, kV, kO, kGate, kUp, kDown, kSlots };
  struct Layer {
    std::vector<Real> attn_norm, ffn_norm;          // (D) each
    std::array<TrainableLinear<Real>, kSlots> lin;  // q k v o (attention), gate up down (MLP)
  };
  // What one layer's backward reads (M = B*T rows); q, k after RoPE.
  struct LayerActs {
    std::vector<Real> xn1, rstd1;     // (M, D), (M)     attention rmsnorm
    std::vector<Real> q, k, v;        // (M, H*Dh), (M, Hkv*Dh) x2
    std::vector<Real> att, lse;       // (M, H*Dh), (M, H)
    std::vector<Real> h;              // (M, D)          residual after attention
    std::vector<Real> xn2, rstd2;     // (M, D), (M)     MLP rmsnorm
    std::vector<Real> gate, up, act;  // (M, I) each, act = silu(gate) * up
    std::array<LinearCache<Real>, kSlots> cache;
  };
  // Backward scratch shared by all layers.
  struct GradScratch {
    std::vector<Real> dx;                // (M, D) dL/d residual stream, carried down the layers
    std::vector<Real> dn, dtmp;          // (M, D)
    std::vector<Real> dq, datt, delta;   // (M, H*Dh), (M, H*Dh), (M, H)
    std::vector<Real> dk, dv;            // (M, Hkv*Dh)
    std::vector<Real> dgate, dup, dact;  // (M, I)
    std::vector<Real> dnw;               // (D) norm-weight gradient, discarded (norms are frozen)
  };
  enum class Pass { Eval, Train };

  void check_batch(const int32_t* tokens,
                   const int32_t* targets,
                   const float* weights,
                   int64_t B,
                   int64_t T) const;
  void reserve(int64_t B, int64_t T, Pass pass);
  void embed(Real* x, const int32_t* tokens, int64_t M) const;
  // Runs the layers over inputs_[0]; returns the final residual (M, D).
  const Real* run_layers(Pass pass, int64_t B, int64_t T);
  void layer_fwd(int64_t il, const Real* x, Real* x_out, LayerActs& a, int64_t B, int64_t T);
  // dx: in dL/d output of layer il, out dL/d its input x.
  void layer_bwd(int64_t il, const Real* x, LayerActs& a, Real* dx, int64_t B, int64_t T);
  // Final norm, head and loss over chunks of rows; with dx (Train) also dL/d x_last into dx.
  CrossEntropyResult head_loss(const Real* x_last,
                               const int32_t* targets,
                               const float* weights,
                               int64_t M,
                               float grad_scale,
                               Real* dx);
  std::vector<TrainableLinear<Real>*> linears();
  std::vector<const TrainableLinear<Real>*> linears() const;
  void save_lords(const std::string& out_dir, AtomicDir::Existing existing) const;
  void save_qlora(const std::string& out_dir, AtomicDir::Existing existing) const;
  void load_adapters(const std::string& path);

  model::ModelConfig config_;
  TrainModelOptions opt_;
  LinearContext ctx_;
  std::string source_dir_;  // the checkpoint loaded (read again by save)
  int64_t sliding_window_ = 0;
  std::shared_ptr<const std::vector<Real>> embed_;  // (V, D)
  std::vector<Layer> layers_;                       // (L)
  std::vector<Real> out_norm_;                      // (D)
  TrainableLinear<Real> head_;                      // (V, D)
  std::vector<float> inv_freq_;                     // (Dh/2)

  // Workspace, grown (never shrunk) to the largest batch seen.
  std::vector<int64_t> pos_;  // (M) position of each row in its sequence
  // (L + 1) x (M, D): layer inputs, [L] the final residual (Eval uses [0], [1] in turn)
  std::vector<std::vector<Real>> inputs_;
  std::vector<LayerActs> acts_;  // (L) with Recompute::Off, else (1) reused per layer
  GradScratch g_;
  std::vector<Real> xf_, rstd_f_, dxf_;  // (M, D), (M), (M, D) final norm
  std::vector<Real> logits_;             // (head_rows, V)
  LinearCache<Real> head_cache_;
  std::shared_ptr<GpuTrainEngine> gpu_;  // device Cuda
};

}  // namespace lords::train
