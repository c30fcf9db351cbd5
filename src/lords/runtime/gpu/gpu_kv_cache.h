// The KV cache of one sequence in device memory, laid out like the host KvCache: per layer K and V of
// shape (capacity, Hkv, Dh), fp32, position-major, one allocation of (n_layer, 2, capacity, Hkv, Dh)
// made up front (device memory is committed when allocated, so size it to the sequence, not to
// max_position_embeddings). GpuLlamaModel::forward writes the new rows and advances pos.
#pragma once

#include <cstdint>

#include "lords/cuda/device_buffer.h"
#include "lords/runtime/kv_cache.h"

namespace lords::runtime {

class GpuKvCache final : public KvCacheBase {
 public:
  GpuKvCache() = default;
  // Throws Error{Usage} on non-positive sizes, Error{Cuda} when the device memory is not there.
  GpuKvCache(int64_t n_layer, int64_t capacity, int64_t n_head_kv, int64_t head_dim)
      : KvCacheBase(n_layer, capacity, n_head_kv, head_dim),
        data_(static_cast<size_t>(2 * n_layer * capacity * n_head_kv * head_dim)) {}

  float* k(int64_t layer) { return data_.data() + (2 * layer) * layer_floats(); }      // (capacity, Hkv, Dh)
  float* v(int64_t layer) { return data_.data() + (2 * layer + 1) * layer_floats(); }  // (capacity, Hkv, Dh)

 private:
  cuda::DeviceBuffer<float> data_;
};

}  // namespace lords::runtime
