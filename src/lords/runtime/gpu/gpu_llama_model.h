// The Llama-family decoder of llama_model.h on one CUDA GPU, built from a loaded LlamaModel (any source:
// HF directory, GGUF, lords checkpoint). Same forward contract and errors (CausalLM), same math:
//   residual stream, norms, RoPE, softmax and attention in fp32; fp16 only as the input of matmuls
//   (activations are converted right before each linear; dense weights are stored fp16 and run on cuBLAS
//   with fp32 accumulation, quantized ones on cuda::qmatmul over the packed codes).
// Its KV cache (GpuKvCache) lives in device memory; logits are copied to the caller's host buffer.
// Activations live in a workspace grown to the largest T seen, so decoding allocates nothing per token.
// All work runs on the model's own stream, which forward synchronizes before returning.
// Decoding (T = 1) replays a CUDA graph of the whole step: the ~15 launches per layer cost more host time
// than the small model's kernels take on the GPU. The step reads its position from device memory and
// appends K, V through a kernel, so one graph serves every position of a cache; it is captured at the
// second decode step of a cache (the first runs eagerly, so one-time allocations happen outside capture)
// and dropped by any other forward, which may regrow the buffers it points at. LORDS_CUDA_GRAPHS=0 or
// set_cuda_graphs(false) runs every step eagerly; a capture that fails falls back to eager for good.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "lords/cuda/blas_handle.h"
#include "lords/cuda/device_buffer.h"
#include "lords/cuda/qmatmul.h"
#include "lords/runtime/causal_lm.h"
#include "lords/runtime/gpu/gpu_kv_cache.h"
#include "lords/runtime/gpu/gpu_linear.h"
#include "lords/runtime/llama_model.h"

namespace lords::runtime {

class GpuLlamaModel final : public CausalLM {
 public:
  // Uploads every weight of `host`, which may be dropped afterwards. Throws Error{Unsupported} without a
  // usable GPU, Error{Cuda} when device memory runs out.
  explicit GpuLlamaModel(const LlamaModel& host);
  ~GpuLlamaModel() override;
  GpuLlamaModel(const GpuLlamaModel&) = delete;
  GpuLlamaModel& operator=(const GpuLlamaModel&) = delete;

  const model::ModelConfig& config() const override { return config_; }
  Device device() const override { return Device::Cuda; }
  // Linears on cuda::qmatmul.
  int64_t quantized_linears() const override { return count_linears(GpuLinear::Kind::Quantized); }
  // Quantized linears the GPU kernels do not take, held dequantized as dense fp16 (gpu_linear.h).
  int64_t dequantized_linears() const { return count_linears(GpuLinear::Kind::Dequantized); }

  // A device cache for up to `capacity` tokens (0: max_position_embeddings, all of it allocated now).
  GpuKvCache make_cache(int64_t capacity = 0) const;
  std::unique_ptr<KvCacheBase> new_cache(int64_t capacity) const override;

  // The CausalLM contract (causal_lm.h); cache must be a GpuKvCache, logits host memory.
  void forward(const int32_t* tokens, int64_t T, KvCacheBase& cache, float* logits, LogitsMode mode) override;

  void set_cuda_graphs(bool on);
  bool cuda_graphs() const { return graphs_; }

 private:
  struct Layer {
    cuda::DeviceBuffer<float> attn_norm, ffn_norm;  // (D)
    GpuLinear q, k, v, o;                           // (H*Dh, D) (Hkv*Dh, D) (Hkv*Dh, D) (D, H*Dh)
    GpuLinear gate, up, down;                       // (I, D) (I, D) (D, I)
  };
  // Device activations of one forward call (llama_model.h's Workspace), grown never shrunk.
  struct Workspace {
    int64_t rows = 0;
    cuda::DeviceBuffer<int32_t> tokens;  // (T)
    cuda::DeviceBuffer<float> x;         // (T, D)      residual stream
    cuda::DeviceBuffer<float> xn;        // (T, D)      normalized input of a block
    cuda::DeviceBuffer<float> q;         // (T, H*Dh)
    cuda::DeviceBuffer<float> att;       // (T, H*Dh)   attention output
    cuda::DeviceBuffer<float> tmp;       // (T, D)      o_proj / down_proj output before the residual add
    cuda::DeviceBuffer<float> gate;      // (T, I)      gate_proj, then silu(gate) * up in place
    cuda::DeviceBuffer<float> up;        // (T, I)
    cuda::DeviceBuffer<float> logits;    // (T, V)
    cuda::DeviceBuffer<uint16_t> x16;    // (T, max(D, H*Dh, I))  fp16 input of the next matmul
  };
  // The model's CUDA stream (blocking, so the legacy default stream that DeviceBuffer's synchronous
  // copies use stays ordered with it). Creating it first checks that a GPU is there.
  class Stream {
   public:
    Stream();
    ~Stream();
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;
    cudaStream_t get() const { return s_; }

   private:
    cudaStream_t s_ = nullptr;
  };

  int64_t count_linears(GpuLinear::Kind kind) const;
  void reserve(int64_t T);
  __half* x16() { return reinterpret_cast<__half*>(ws_.x16.data()); }
  // p0_dev: the decode step's position in device memory (graph form), else null (position cache.pos).
  void run_layer(int64_t il, int64_t T, GpuKvCache& cache, const int64_t* p0_dev);
  // Embedding, layers, final norm and head for rows first..T-1 into ws_.logits.
  void run_model(int64_t T, GpuKvCache& cache, int64_t first, const int64_t* p0_dev);
  // One decode step through the graph (capturing it when due).
  void decode_graph_step(GpuKvCache& cache);
  void drop_graph();

  model::ModelConfig config_;
  int64_t sliding_window_ = 0;  // 0: none
  Stream stream_;               // before everything that uses it: destroyed last
  cuda::BlasHandles blas_;      // bound to stream_
  cuda::QmmWorkspace qmm_ws_;
  cuda::DeviceBuffer<float> embed_;     // (V, D) fp32: the gather stays exact
  std::vector<Layer> layers_;           // (L)
  cuda::DeviceBuffer<float> out_norm_;  // (D)
  GpuLinear head_;                      // (V, D) (a fp16 copy of the embedding when tied)
  cuda::DeviceBuffer<float> inv_freq_;  // (Dh/2)
  Workspace ws_;
  // CUDA-graph decoding.
  bool graphs_ = true;
  bool decode_warmed_ = false;              // one eager decode step has run
  cudaGraphExec_t graph_ = nullptr;
  const float* graph_cache_ = nullptr;      // the cache the graph writes (its k(0))
  cuda::DeviceBuffer<int64_t> pos_;         // (1) the step's position
  cuda::DeviceBuffer<float> kv_new_;        // (2, Hkv*Dh) the step's key and value rows
};

}  // namespace lords::runtime
