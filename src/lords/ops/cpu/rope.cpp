// CPU RoPE: tokens in parallel; each (t, i) angle's cos/sin is computed once in fp64 and applied to
// every head, so the cost is T*Dh/2 sincos plus one fp32 rotation per element (see ops/rope.h).
#include "lords/ops/rope.h"

#include <cmath>

#include "lords/core/error.h"

namespace lords::ops::cpu {

void rope(float* x, const int64_t* pos, const float* inv_freq, int64_t T, int64_t H, int64_t Dh) {
  rope_rotate(x, pos, inv_freq, T, H, Dh, false);
}

// sin(-a) = -sin(a) exactly, so the inverse is the same arithmetic with s negated.
void rope_rotate(float* x, const int64_t* pos, const float* inv_freq, int64_t T, int64_t H, int64_t Dh, bool inverse) {
  LORDS_ASSERT(T >= 0 && H > 0 && Dh > 0 && Dh % 2 == 0);
  const int64_t half = Dh / 2;
#pragma omp parallel for schedule(static) if (T * H * Dh >= (int64_t{1} << 15))
  for (int64_t t = 0; t < T; ++t) {
    float* xt = x + t * H * Dh;
    for (int64_t i = 0; i < half; ++i) {
      const double a = static_cast<double>(pos[t]) * inv_freq[i];
      const float c = static_cast<float>(std::cos(a)), s = static_cast<float>(inverse ? -std::sin(a) : std::sin(a));
      for (int64_t h = 0; h < H; ++h) {
        float* v = xt + h * Dh;
        const float x1 = v[i], x2 = v[i + half];
        v[i] = x1 * c - x2 * s;
        v[i + half] = x2 * c + x1 * s;
      }
    }
  }
}

}  // namespace lords::ops::cpu
