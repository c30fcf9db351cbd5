// Reference embedding gather (see ops/embedding.h).
#include "lords/ops/embedding.h"

#include <algorithm>

#include "lords/core/error.h"

namespace lords::ops::ref {

void embedding(float* out, const float* table, const int32_t* tokens, int64_t T, int64_t V, int64_t D) {
  for (int64_t t = 0; t < T; ++t) {
    const int64_t id = tokens[t];
    LORDS_ASSERT(id >= 0 && id < V);
    std::copy(table + id * D, table + (id + 1) * D, out + t * D);
  }
}

}  // namespace lords::ops::ref
