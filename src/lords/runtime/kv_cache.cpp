#include "lords/runtime/kv_cache.h"

#include "lords/core/error.h"

namespace lords::runtime {

KvCacheBase::KvCacheBase(int64_t n_layer, int64_t capacity, int64_t n_head_kv, int64_t head_dim)
    : n_layer_(n_layer), capacity_(capacity), n_head_kv_(n_head_kv), head_dim_(head_dim) {
  LORDS_CHECK(n_layer > 0 && capacity > 0 && n_head_kv > 0 && head_dim > 0, ErrorKind::Usage,
              "[kv_cache] sizes must be positive: layers {}, capacity {}, kv heads {}, head dim {}", n_layer,
              capacity, n_head_kv, head_dim);
}

KvCache::KvCache(int64_t n_layer, int64_t capacity, int64_t n_head_kv, int64_t head_dim)
    : KvCacheBase(n_layer, capacity, n_head_kv, head_dim) {
  data_.reset(new float[static_cast<size_t>(2 * n_layer * layer_floats())]);
}

}  // namespace lords::runtime
