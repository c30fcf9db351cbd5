// SwiGLU gate of the Llama MLP, training form: out = silu(gate) * up, silu(g) = g sigmoid(g).
// Backward, with s = sigmoid(g) and silu'(g) = s (1 + g (1 - s)):
//   dgate = dout * up * silu'(gate),   dup = dout * silu(gate)        (both OVERWRITTEN, activation grads)
// Elementwise over n = M x intermediate values. Every read of element i happens before its writes,
// so any output may alias any input (e.g. dgate over gate, dup over up).
//   ref:: templated on the float type; ref<float>'s forward is bit-identical to lords::ops::ref::silu_mul.
//   cpu:: fp32, OpenMP.   fp32 forward: lords::ops::cpu::silu_mul.
#pragma once

#include <cstdint>

namespace lords::train {

namespace ref {
// out (n), gate (n), up (n)
template <class T>
void silu_mul_fwd(T* out, const T* gate, const T* up, int64_t n);
// dgate (n), dup (n), dout (n), gate (n), up (n)
template <class T>
void silu_mul_bwd(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n);
}  // namespace ref

namespace cpu {
void silu_mul_bwd(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n);
}  // namespace cpu

}  // namespace lords::train
