// CPU RoPE backward: the rotation by -angle, in place on the gradient (see train/grad_rope.h). Tokens in
// parallel; each (t, i) angle's cos/sin is computed once in fp64 and applied to every head, as in
// ops/cpu/rope.cpp.
#include "lords/train/grad_rope.h"

#include <cmath>

#include "lords/core/error.h"

namespace lords::train::cpu {

void rope_bwd(float* dx, const int64_t* pos, const float* inv_freq, int64_t M, int64_t H, int64_t Dh) {
  LORDS_ASSERT(M >= 0 && H > 0 && Dh > 0 && Dh % 2 == 0);
  const int64_t half = Dh / 2;
#pragma omp parallel for schedule(static) if (M * H * Dh >= (int64_t{1} << 15))
  for (int64_t t = 0; t < M; ++t) {
    float* xt = dx + t * H * Dh;
    for (int64_t i = 0; i < half; ++i) {
      const double a = static_cast<double>(pos[t]) * inv_freq[i];
      const float c = static_cast<float>(std::cos(a)), s = static_cast<float>(std::sin(a));
      for (int64_t h = 0; h < H; ++h) {
        float* v = xt + h * Dh;
        const float g1 = v[i], g2 = v[i + half];
        // R(a)^T applied to (dy1, dy2)
        v[i] = g1 * c + g2 * s;
        v[i + half] = g2 * c - g1 * s;
      }
    }
  }
}

}  // namespace lords::train::cpu
