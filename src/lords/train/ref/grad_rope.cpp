// Reference RoPE, forward and backward (see train/grad_rope.h): the inference reference's rotation
// (ops::ref::rope_rotate), the backward by the negated angle (the transpose of a rotation is its inverse).
#include "lords/train/grad_rope.h"

#include "lords/ops/rope.h"

namespace lords::train::ref {

template <class T>
void rope_fwd(T* x, const int64_t* pos, const float* inv_freq, int64_t M, int64_t H, int64_t Dh) {
  ops::ref::rope_rotate<T>(x, pos, inv_freq, M, H, Dh, false);
}

template <class T>
void rope_bwd(T* dx, const int64_t* pos, const float* inv_freq, int64_t M, int64_t H, int64_t Dh) {
  // Forward per pair: [y1; y2] = R(a) [x1; x2], R(a) = [[c, -s], [s, c]]; so dx = R(a)^T dy = R(-a) dy.
  ops::ref::rope_rotate<T>(dx, pos, inv_freq, M, H, Dh, true);
}

template void rope_fwd<float>(float*, const int64_t*, const float*, int64_t, int64_t, int64_t);
template void rope_fwd<double>(double*, const int64_t*, const float*, int64_t, int64_t, int64_t);
template void rope_bwd<float>(float*, const int64_t*, const float*, int64_t, int64_t, int64_t);
template void rope_bwd<double>(double*, const int64_t*, const float*, int64_t, int64_t, int64_t);

}  // namespace lords::train::ref
