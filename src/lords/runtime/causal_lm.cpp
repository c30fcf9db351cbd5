// Device names and the forward argument checks every CausalLM shares (see causal_lm.h).
#include "lords/runtime/causal_lm.h"

#include "lords/core/error.h"

namespace lords::runtime {

const char* device_name(Device d) { return d == Device::Cuda ? "cuda" : "cpu"; }

Device device_from_name(const std::string& name) {
  if (name == "cpu") return Device::Cpu;
  if (name == "cuda") return Device::Cuda;
  LORDS_FAIL(ErrorKind::Usage, "--device must be cpu or cuda, got '{}'", name);
}

int64_t cache_capacity(const model::ModelConfig& c, int64_t capacity) {
  if (capacity == 0) capacity = c.max_pos;
  LORDS_CHECK(capacity <= c.max_pos, ErrorKind::Usage,
              "[kv_cache] context of {} tokens exceeds the model's maximum of {}", capacity, c.max_pos);
  return capacity;
}

void check_forward(const model::ModelConfig& c, int64_t sliding_window, const int32_t* tokens, int64_t T,
                   const KvCacheBase& cache) {
  LORDS_CHECK(T > 0, ErrorKind::Usage, "[forward] need at least one token, got {}", T);
  LORDS_CHECK(cache.n_layer() == c.n_layer && cache.n_head_kv() == c.n_head_kv && cache.head_dim() == c.head_dim,
              ErrorKind::Usage,
              "[forward] KV cache is for {} layers x {} kv heads x {} dims, the model has {} x {} x {}",
              cache.n_layer(), cache.n_head_kv(), cache.head_dim(), c.n_layer, c.n_head_kv, c.head_dim);
  const int64_t end = cache.pos + T;
  LORDS_CHECK(cache.pos >= 0, ErrorKind::Usage, "[forward] KV cache position {} is negative", cache.pos);
  LORDS_CHECK(end <= c.max_pos, ErrorKind::Usage, "[forward] context of {} tokens exceeds the model's maximum of {}",
              end, c.max_pos);
  LORDS_CHECK(end <= cache.capacity(), ErrorKind::Usage,
              "[forward] context of {} tokens exceeds the KV cache capacity of {}", end, cache.capacity());
  LORDS_CHECK(sliding_window == 0 || end <= sliding_window, ErrorKind::Unsupported,
              "[forward] context of {} tokens exceeds the sliding window of {} (sliding-window attention is not "
              "implemented)", end, sliding_window);
  for (int64_t t = 0; t < T; ++t)
    LORDS_CHECK(tokens[t] >= 0 && tokens[t] < c.vocab, ErrorKind::Usage,
                "[forward] token id {} at index {} is outside the vocabulary [0, {})", tokens[t], t, c.vocab);
}

}  // namespace lords::runtime
