// Reference RoPE and the frequency table shared by every backend (see ops/rope.h).
#include "lords/ops/rope.h"

#include <cmath>
#include <numbers>

#include "lords/core/error.h"

namespace lords::ops {

void rope_inv_freq(float* inv_freq, int64_t Dh, double theta, const RopeScaling& s) {
  LORDS_ASSERT(Dh > 0 && Dh % 2 == 0 && theta > 0 && s.factor > 0);
  // HF _compute_llama3_parameters: wavelengths longer than original_ctx / low_freq_factor are divided
  // by factor, shorter than original_ctx / high_freq_factor kept, the band between interpolated.
  const double old_ctx = static_cast<double>(s.original_max_position_embeddings);
  const double low_wavelen = old_ctx / s.low_freq_factor, high_wavelen = old_ctx / s.high_freq_factor;
  for (int64_t i = 0; i < Dh / 2; ++i) {
    double f = 1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(Dh));
    if (s.kind == RopeScalingKind::Linear) {
      f /= s.factor;
    } else if (s.kind == RopeScalingKind::Llama3) {
      const double wavelen = 2 * std::numbers::pi / f;
      if (wavelen > low_wavelen) {
        f /= s.factor;
      } else if (wavelen >= high_wavelen) {  // medium band
        const double smooth = (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
    inv_freq[i] = static_cast<float>(f);
  }
}

namespace ref {

template <class E>
void rope_rotate(E* x, const int64_t* pos, const float* inv_freq, int64_t T, int64_t H, int64_t Dh, bool inverse) {
  LORDS_ASSERT(T >= 0 && H > 0 && Dh > 0 && Dh % 2 == 0);
  const int64_t half = Dh / 2;
  const double sign = inverse ? -1.0 : 1.0;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      E* v = x + (t * H + h) * Dh;
      for (int64_t i = 0; i < half; ++i) {
        const double a = static_cast<double>(pos[t]) * inv_freq[i];
        const double c = std::cos(a), s = sign * std::sin(a);
        const double x1 = v[i], x2 = v[i + half];
        v[i] = static_cast<E>(x1 * c - x2 * s);
        v[i + half] = static_cast<E>(x2 * c + x1 * s);
      }
    }
}

template void rope_rotate<float>(float*, const int64_t*, const float*, int64_t, int64_t, int64_t, bool);
template void rope_rotate<double>(double*, const int64_t*, const float*, int64_t, int64_t, int64_t, bool);

void rope(float* x, const int64_t* pos, const float* inv_freq, int64_t T, int64_t H, int64_t Dh) {
  rope_rotate<float>(x, pos, inv_freq, T, H, Dh, false);
}

}  // namespace ref
}  // namespace lords::ops
