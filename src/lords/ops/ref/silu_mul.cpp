// Reference SwiGLU gate (see ops/silu_mul.h).
#include "lords/ops/silu_mul.h"

#include "lords/core/error.h"

namespace lords::ops::ref {

void silu_mul(float* out, const float* gate, const float* up, int64_t n) {
  LORDS_ASSERT(n >= 0);
  for (int64_t i = 0; i < n; ++i) out[i] = silu(gate[i]) * up[i];
}

}  // namespace lords::ops::ref
