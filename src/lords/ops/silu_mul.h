// SwiGLU gate of the Llama MLP: out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g))
// (HF LlamaMLP: down_proj(act_fn(gate_proj(x)) * up_proj(x))). out may alias gate or up.
#pragma once

#include <cmath>
#include <cstdint>

namespace lords::ops {

// The element math, shared by every backend so they differ only in loop order.
inline float silu(float g) { return g / (1.0f + std::exp(-g)); }

namespace ref {
// out (n), gate (n), up (n)
void silu_mul(float* out, const float* gate, const float* up, int64_t n);
}  // namespace ref
namespace cpu {
void silu_mul(float* out, const float* gate, const float* up, int64_t n);
}  // namespace cpu

}  // namespace lords::ops
