// Rotary position embedding, training form (HF rotate-half convention, same arguments as
// lords/ops/rope.h). For token t, head h, i < Dh/2 and angle a = pos[t] * inv_freq[i] the forward
// rotates the pair (x1, x2) = (x[i], x[i+Dh/2]) by +a:
//   y1 = x1 cos a - x2 sin a,   y2 = x2 cos a + x1 sin a
// A rotation is orthogonal, so the backward applies its transpose, the rotation by -a:
//   dx1 = dy1 cos a + dy2 sin a,   dx2 = dy2 cos a - dy1 sin a
// Both work in place on (M, H, Dh) rows; M = tokens (batch x seq, each with its own pos), H = heads
// (pass Hkv for keys). The backward's output is an activation grad: it overwrites dy with dx.
// Angles and cos/sin in fp64 as in ops/rope.h.
//   ref:: templated on the float type, rotation in fp64.   fp32 forward: lords::ops::cpu::rope.
//   cpu:: fp32 rotation, tokens in parallel (OpenMP).
#pragma once

#include <cstdint>

namespace lords::train {

namespace ref {
// In place: x (M, H, Dh) -> rotated x; pos (M), inv_freq (Dh/2); Dh even
template <class T>
void rope_fwd(T* x, const int64_t* pos, const float* inv_freq, int64_t M, int64_t H, int64_t Dh);
// In place: dx (M, H, Dh) holds dy on entry and dx on return
template <class T>
void rope_bwd(T* dx, const int64_t* pos, const float* inv_freq, int64_t M, int64_t H, int64_t Dh);
}  // namespace ref

namespace cpu {
void rope_bwd(float* dx, const int64_t* pos, const float* inv_freq, int64_t M, int64_t H, int64_t Dh);
}  // namespace cpu

}  // namespace lords::train
