// Rotary position embedding, HF "rotate half" convention (modeling_llama.py apply_rotary_pos_emb):
// for each token t, head h and i < Dh/2, with angle a = pos[t] * inv_freq[i],
//   x[t,h,i]        <- x[t,h,i] cos a - x[t,h,i+Dh/2] sin a
//   x[t,h,i+Dh/2]   <- x[t,h,i+Dh/2] cos a + x[t,h,i] sin a
// Angles and their cos/sin are computed in fp64 by both backends (fp32 angles lose ~1e-3 rad at
// position 8k); the rotation itself is fp32 on cpu, fp64 on ref.
// inv_freq comes from rope_inv_freq(): theta^(-2i/Dh), then the config's rope_scaling.
#pragma once

#include <cstdint>

namespace lords::ops {

enum class RopeScalingKind { None, Linear, Llama3 };

// HF rope_scaling ("rope_type" / "type"): linear divides every frequency by factor; llama3
// (_compute_llama3_parameters) divides low frequencies by factor, keeps high ones and blends between.
struct RopeScaling {
  RopeScalingKind kind = RopeScalingKind::None;
  double factor = 1.0;
  double low_freq_factor = 1.0;                   // llama3
  double high_freq_factor = 4.0;                  // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3
};

// inv_freq (Dh/2): the rotary frequencies, computed in fp64 and rounded to fp32 (HF keeps them fp32).
// Dh even. Shared by every backend.
void rope_inv_freq(float* inv_freq, int64_t Dh, double theta, const RopeScaling& scaling);

namespace ref {
// In place. x (T, H, Dh), pos (T), inv_freq (Dh/2); Dh even.
void rope(float* x, const int64_t* pos, const float* inv_freq, int64_t T, int64_t H, int64_t Dh);
// The same rotation for float or double elements (the training reference runs it in double); inverse:
// by -a, the transpose (RoPE's backward). rope() is E = float, inverse = false.
template <class E>
void rope_rotate(E* x, const int64_t* pos, const float* inv_freq, int64_t T, int64_t H, int64_t Dh, bool inverse);
}  // namespace ref
namespace cpu {
void rope(float* x, const int64_t* pos, const float* inv_freq, int64_t T, int64_t H, int64_t Dh);
// inverse: the rotation by -a (the transpose), which is RoPE's backward (train/grad_rope.h); rope() is
// inverse = false.
void rope_rotate(float* x, const int64_t* pos, const float* inv_freq, int64_t T, int64_t H, int64_t Dh, bool inverse);
}  // namespace cpu

}  // namespace lords::ops
