// CPU embedding gather: one memcpy per token (see ops/embedding.h).
#include "lords/ops/embedding.h"

#include <cstring>

#include "lords/core/error.h"

namespace lords::ops::cpu {

void embedding(float* out, const float* table, const int32_t* tokens, int64_t T, int64_t V, int64_t D) {
  for (int64_t t = 0; t < T; ++t) {
    const int64_t id = tokens[t];
    LORDS_ASSERT(id >= 0 && id < V);
    std::memcpy(out + t * D, table + id * D, static_cast<size_t>(D) * sizeof(float));
  }
}

}  // namespace lords::ops::cpu
