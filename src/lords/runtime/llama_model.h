// The Llama-family decoder (llama, mistral, qwen2; SmolLM is llama) with a KV cache, after HF
// modeling_llama.py LlamaForCausalLM:
//   x = embed(tokens)
//   per layer:  h = x + o_proj(attn(rope(q_proj(rmsnorm(x))), rope(k_proj(..)), v_proj(..)))   (causal GQA)
//               x = h + down_proj(silu(gate_proj(rmsnorm(h))) * up_proj(rmsnorm(h)))
//   logits = lm_head(rmsnorm(x))           (lm_head = the embedding when tie_word_embeddings)
// Qwen2 adds q/k/v biases. RoPE uses rope_theta and rope_scaling (linear, llama3) from config.json,
// or the rope_freqs tensor of a Llama-3 GGUF. Mistral's sliding window is not implemented: contexts
// longer than the window are refused (below it, full causal attention is exact).
// Sources: an HF directory or .gguf file (every linear dense fp32), or a lords checkpoint directory
// (quantized linears run through qmatmul over the packed codes, everything else dense fp32); a
// checkpoint directory holding adapters.safetensors (a QLoRA fine-tune) adds their LoRA branches.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lords/core/tensor.h"
#include "lords/model/model_config.h"
#include "lords/runtime/backend.h"
#include "lords/runtime/causal_lm.h"
#include "lords/runtime/kv_cache.h"
#include "lords/runtime/linear.h"

namespace lords::runtime {

// The inputs of a layer's linears, for observers (calibration): AttnIn feeds q/k/v, AttnOut feeds
// o_proj, FfnIn feeds gate/up, FfnDown feeds down_proj.
enum class LinearInput { AttnIn = 0, AttnOut = 1, FfnIn = 2, FfnDown = 3 };
// Called during forward with X (T, K), the input of those linears in layer `layer`.
using InputObserver = std::function<void(int64_t layer, LinearInput which, const float* X, int64_t T, int64_t K)>;

struct LlamaLayer {
  std::vector<float> attn_norm;  // (D)  input_layernorm
  std::vector<float> ffn_norm;   // (D)  post_attention_layernorm
  Linear q, k, v, o;             // (H*Dh, D) (Hkv*Dh, D) (Hkv*Dh, D) (D, H*Dh)
  Linear gate, up, down;         // (I, D) (I, D) (D, I)
};

// The host implementation of CausalLM (GpuLlamaModel is built from one of these).
class LlamaModel final : public CausalLM {
 public:
  // HF directory, .gguf file, or lords checkpoint directory (its model.safetensors metadata says
  // format "lords-checkpoint"). Throws Error naming the path and the problem.
  static LlamaModel load(const std::string& path, Backend backend);

  const model::ModelConfig& config() const override { return config_; }
  Device device() const override { return Device::Cpu; }
  Backend backend() const { return backend_; }
  void set_backend(Backend b) { backend_ = b; }
  int64_t quantized_linears() const override;  // how many linears run on qmatmul
  int64_t lora_linears() const;                 // how many linears carry a LoRA branch

  // A cache for up to `capacity` tokens (0: max_position_embeddings). Throws Error{Usage} beyond it.
  KvCache make_cache(int64_t capacity = 0) const;
  std::unique_ptr<KvCacheBase> new_cache(int64_t capacity) const override;

  // Observes the input of every linear during forward (nullptr to stop).
  void set_input_observer(InputObserver observer) { observer_ = std::move(observer); }

  // The CausalLM contract (causal_lm.h); cache must be a KvCache (host memory).
  void forward(const int32_t* tokens, int64_t T, KvCacheBase& cache, float* logits, LogitsMode mode) override;

  // The weights, for building the same model on another device (GpuLlamaModel).
  const HostTensor& embedding() const { return *embed_; }  // (V, D)
  const std::vector<LlamaLayer>& layers() const { return layers_; }
  const std::vector<float>& output_norm() const { return out_norm_; }  // (D)
  const Linear& head() const { return head_; }                         // (V, D)
  const std::vector<float>& inv_freq() const { return inv_freq_; }     // (Dh/2), rope_scaling applied
  int64_t sliding_window() const { return sliding_window_; }           // 0: none

 private:
  // Activations of one forward call, grown (never shrunk) to the largest T seen: no allocation per op
  // or per decode step.
  struct Workspace {
    int64_t rows = 0;
    std::vector<float> x;     // (T, D)      residual stream
    std::vector<float> xn;    // (T, D)      normalized input of a block
    std::vector<float> q;     // (T, H*Dh)
    std::vector<float> att;   // (T, H*Dh)   attention output
    std::vector<float> tmp;   // (T, D)      o_proj / down_proj output before the residual add
    std::vector<float> gate;  // (T, I)      gate_proj, then silu(gate) * up in place
    std::vector<float> up;    // (T, I)
    std::vector<int64_t> pos;  // (T)
  };
  struct Builder;
  friend struct Builder;

  void reserve(int64_t T);
  void run_layer(int64_t l, int64_t T, KvCache& cache);

  model::ModelConfig config_;
  Backend backend_ = Backend::Cpu;
  int64_t sliding_window_ = 0;               // 0: none
  std::shared_ptr<const HostTensor> embed_;  // (V, D)
  std::vector<LlamaLayer> layers_;           // (L)
  std::vector<float> out_norm_;              // (D)
  Linear head_;                              // (V, D)
  std::vector<float> inv_freq_;              // (Dh/2)
  Workspace ws_;
  InputObserver observer_;
};

}  // namespace lords::runtime
