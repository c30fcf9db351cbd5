// Reference RoPE, forward and backward (see train/grad_rope.h): one rotation routine, the backward
// passes the negated angle (the transpose of a rotation is its inverse).
#include "lords/train/grad_rope.h"

#include <cmath>

#include "lords/core/error.h"

namespace lords::train::ref {

namespace {

// Rotates every (x[i], x[i+Dh/2]) pair by sign * pos[t] * inv_freq[i], in fp64.
template <class T>
void rotate(T* x, const int64_t* pos, const float* inv_freq, int64_t M, int64_t H, int64_t Dh, double sign) {
  LORDS_ASSERT(M >= 0 && H > 0 && Dh > 0 && Dh % 2 == 0);
  const int64_t half = Dh / 2;
  for (int64_t t = 0; t < M; ++t)
    for (int64_t h = 0; h < H; ++h) {
      T* v = x + (t * H + h) * Dh;
      for (int64_t i = 0; i < half; ++i) {
        // Same angle expression as ops::ref::rope, so ref<float>'s forward is bit-identical to it.
        const double a = static_cast<double>(pos[t]) * inv_freq[i];
        const double c = std::cos(a), s = sign * std::sin(a);
        const double x1 = v[i], x2 = v[i + half];
        v[i] = static_cast<T>(x1 * c - x2 * s);
        v[i + half] = static_cast<T>(x2 * c + x1 * s);
      }
    }
}

}  // namespace

template <class T>
void rope_fwd(T* x, const int64_t* pos, const float* inv_freq, int64_t M, int64_t H, int64_t Dh) {
  rotate(x, pos, inv_freq, M, H, Dh, 1.0);
}

template <class T>
void rope_bwd(T* dx, const int64_t* pos, const float* inv_freq, int64_t M, int64_t H, int64_t Dh) {
  // Forward per pair: [y1; y2] = R(a) [x1; x2], R(a) = [[c, -s], [s, c]]; so dx = R(a)^T dy = R(-a) dy.
  rotate(dx, pos, inv_freq, M, H, Dh, -1.0);
}

template void rope_fwd<float>(float*, const int64_t*, const float*, int64_t, int64_t, int64_t);
template void rope_fwd<double>(double*, const int64_t*, const float*, int64_t, int64_t, int64_t);
template void rope_bwd<float>(float*, const int64_t*, const float*, int64_t, int64_t, int64_t);
template void rope_bwd<double>(double*, const int64_t*, const float*, int64_t, int64_t, int64_t);

}  // namespace lords::train::ref
