// Reference SwiGLU gate, forward and backward (see train/grad_silu_mul.h).
#include "lords/train/grad_silu_mul.h"

#include <cmath>

#include "lords/core/error.h"

namespace lords::train::ref {

template <class T>
void silu_mul_fwd(T* out, const T* gate, const T* up, int64_t n) {
  LORDS_ASSERT(n >= 0);
  // Same expression as ops::silu, evaluated in T.
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (T(1) + std::exp(-gate[i])) * up[i];
}

template <class T>
void silu_mul_bwd(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n) {
  LORDS_ASSERT(n >= 0);
  for (int64_t i = 0; i < n; ++i) {
    // Load everything first: outputs may alias inputs.
    const double g = gate[i], u = up[i], dy = dout[i];
    const double s = 1.0 / (1.0 + std::exp(-g));  // sigmoid; exp overflow gives s = 0, not NaN
    // d silu / dg = s + g s (1 - s): term 1 from g itself, term 2 from the sigmoid's derivative.
    dgate[i] = static_cast<T>(dy * u * (s * (1.0 + g * (1.0 - s))));
    dup[i] = static_cast<T>(dy * g * s);
  }
}

template void silu_mul_fwd<float>(float*, const float*, const float*, int64_t);
template void silu_mul_fwd<double>(double*, const double*, const double*, int64_t);
template void silu_mul_bwd<float>(float*, float*, const float*, const float*, const float*, int64_t);
template void silu_mul_bwd<double>(double*, double*, const double*, const double*, const double*, int64_t);

}  // namespace lords::train::ref
