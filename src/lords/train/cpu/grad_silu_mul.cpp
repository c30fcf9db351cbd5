// CPU SwiGLU backward: elementwise over an OpenMP-split range (see train/grad_silu_mul.h).
#include "lords/train/grad_silu_mul.h"

#include <cmath>

#include "lords/core/error.h"

namespace lords::train::cpu {

void silu_mul_bwd(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n) {
  LORDS_ASSERT(n >= 0);
#pragma omp parallel for simd schedule(static) if (n >= (int64_t{1} << 16))
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i], u = up[i], dy = dout[i];  // all loads first: outputs may alias inputs
    const float s = 1.0f / (1.0f + std::exp(-g));
    dgate[i] = dy * u * (s * (1.0f + g * (1.0f - s)));  // silu'(g) = s + g s (1 - s)
    dup[i] = dy * g * s;
  }
}

}  // namespace lords::train::cpu
