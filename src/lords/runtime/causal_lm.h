// CausalLM: what perplexity, generation and the benchmarks need from a model, whatever device runs it.
// Two implementations: LlamaModel (host memory; the ref or cpu kernels) and GpuLlamaModel
// (runtime/gpu/; CUDA kernels, cuBLAS and cuda::qmatmul). Both share the forward contract below, so the
// evaluation code is written once (llama.cpp keeps one perplexity tool over every backend likewise).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "lords/model/model_config.h"
#include "lords/runtime/kv_cache.h"

namespace lords::runtime {

enum class Device { Cpu, Cuda };

const char* device_name(Device d);  // "cpu" | "cuda"
// "cpu" | "cuda"; throws Error{Usage} otherwise.
Device device_from_name(const std::string& name);

enum class LogitsMode {
  All,   // logits (T, V): one row per input token (perplexity)
  Last,  // logits (1, V): only the last token's row (generation); skips the head on the others
};

class CausalLM {
 public:
  virtual ~CausalLM() = default;

  virtual const model::ModelConfig& config() const = 0;
  virtual Device device() const = 0;
  // How many linears run on the quantized kernels (qmatmul over packed codes).
  virtual int64_t quantized_linears() const = 0;
  int64_t vocab() const { return config().vocab; }
  int64_t max_context() const { return config().max_pos; }  // max_position_embeddings

  // A cache of this model's kind for up to `capacity` tokens (0: max_position_embeddings). Throws
  // Error{Usage} beyond the model's maximum context.
  virtual std::unique_ptr<KvCacheBase> new_cache(int64_t capacity) const = 0;

  // Runs T tokens at positions cache.pos .. cache.pos+T-1, appends their keys/values to the cache and
  // advances cache.pos by T. logits (host memory): (T, V) for LogitsMode::All, (1, V) for Last.
  // Throws Error{Usage} (and leaves the cache untouched) on T <= 0, a token id outside [0, V), a
  // context beyond max_position_embeddings or the cache capacity, or a cache made for another model
  // or device; Error{Unsupported} on a context beyond a sliding window. Not reentrant: one forward at a
  // time per model (it owns one workspace); use one cache per sequence.
  virtual void forward(const int32_t* tokens, int64_t T, KvCacheBase& cache, float* logits, LogitsMode mode) = 0;

 protected:
  CausalLM() = default;
  CausalLM(const CausalLM&) = default;
  CausalLM(CausalLM&&) = default;
  CausalLM& operator=(const CausalLM&) = default;
  CausalLM& operator=(CausalLM&&) = default;
};

// The capacity of a new cache: `capacity`, or max_position_embeddings for 0. Throws Error{Usage} beyond
// the model's maximum context.
int64_t cache_capacity(const model::ModelConfig& config, int64_t capacity);

// The argument checks of forward, shared by every implementation so the errors are the same
// (see CausalLM::forward). sliding_window 0: none.
void check_forward(const model::ModelConfig& config, int64_t sliding_window, const int32_t* tokens, int64_t T,
                   const KvCacheBase& cache);

}  // namespace lords::runtime
