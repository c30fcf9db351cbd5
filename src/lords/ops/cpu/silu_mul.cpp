// CPU SwiGLU gate: the shared scalar silu() over an OpenMP-split range. It runs once per MLP on
// (T, intermediate) values, far below the cost of the three projections around it.
#include "lords/ops/silu_mul.h"

#include "lords/core/error.h"

namespace lords::ops::cpu {

void silu_mul(float* out, const float* gate, const float* up, int64_t n) {
  LORDS_ASSERT(n >= 0);
#pragma omp parallel for simd schedule(static) if (n >= (int64_t{1} << 16))
  for (int64_t i = 0; i < n; ++i) out[i] = silu(gate[i]) * up[i];
}

}  // namespace lords::ops::cpu
