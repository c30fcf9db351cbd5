// CPU RoPE backward: the rotation by -angle, in place on the gradient (see train/grad_rope.h), which is
// the forward kernel's inverse form (ops/cpu/rope.cpp).
#include "lords/ops/rope.h"
#include "lords/train/grad_rope.h"

namespace lords::train::cpu {

void rope_bwd(float* dx, const int64_t* pos, const float* inv_freq, int64_t M, int64_t H, int64_t Dh) {
  ops::cpu::rope_rotate(dx, pos, inv_freq, M, H, Dh, true);
}

}  // namespace lords::train::cpu
