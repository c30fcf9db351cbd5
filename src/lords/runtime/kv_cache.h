// The key/value cache of one sequence: per layer K and V of shape (capacity, Hkv, Dh), position-major,
// so the keys of a new chunk of T tokens are one contiguous (T, Hkv*Dh) block that the k/v projections
// write straight into. `pos` counts the tokens already cached; the model's forward advances it.
// Reset (pos = 0) to start a new sequence; nothing needs clearing.
// KvCacheBase is what every device's cache shares (position and sizes); KvCache holds its rows in host
// memory for LlamaModel, GpuKvCache (runtime/gpu/) in device memory for GpuLlamaModel.
#pragma once

#include <cstdint>
#include <memory>

namespace lords::runtime {

class KvCacheBase {
 public:
  virtual ~KvCacheBase() = default;

  int64_t pos = 0;  // tokens cached so far (the position of the next token)

  int64_t n_layer() const { return n_layer_; }
  int64_t capacity() const { return capacity_; }  // most tokens it can hold
  int64_t n_head_kv() const { return n_head_kv_; }
  int64_t head_dim() const { return head_dim_; }
  void reset() { pos = 0; }

 protected:
  KvCacheBase() = default;
  // Throws Error{Usage} on non-positive sizes.
  KvCacheBase(int64_t n_layer, int64_t capacity, int64_t n_head_kv, int64_t head_dim);
  KvCacheBase(const KvCacheBase&) = default;
  KvCacheBase(KvCacheBase&&) = default;
  KvCacheBase& operator=(const KvCacheBase&) = default;
  KvCacheBase& operator=(KvCacheBase&&) = default;

  int64_t layer_floats() const { return capacity_ * n_head_kv_ * head_dim_; }  // one of K or V, one layer

 private:
  int64_t n_layer_ = 0, capacity_ = 0, n_head_kv_ = 0, head_dim_ = 0;
};

class KvCache final : public KvCacheBase {
 public:
  KvCache() = default;
  // Throws Error{Usage} on non-positive sizes.
  KvCache(int64_t n_layer, int64_t capacity, int64_t n_head_kv, int64_t head_dim);

  float* k(int64_t layer) { return data_.get() + (2 * layer) * layer_floats(); }      // (capacity, Hkv, Dh)
  float* v(int64_t layer) { return data_.get() + (2 * layer + 1) * layer_floats(); }  // (capacity, Hkv, Dh)

 private:
  // (n_layer, 2, capacity, Hkv, Dh): one allocation, left uninitialized (rows are written before they
  // are read), so a large capacity costs only the pages a sequence touches.
  std::unique_ptr<float[]> data_;
};

}  // namespace lords::runtime
