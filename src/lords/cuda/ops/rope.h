// RoPE on the GPU, the conventions of ops/rope.h: HF "rotate half", for token t (at position p0 + t),
// head h and i < Dh/2, with a = (p0 + t) * inv_freq[i]:
//   x[t,h,i] <- x[t,h,i] cos a - x[t,h,i+Dh/2] sin a,   x[t,h,i+Dh/2] <- x[t,h,i+Dh/2] cos a + x[t,h,i] sin a
// The angle and its cos/sin are computed in fp64 and rounded to fp32 (as the cpu kernel does: fp32
// angles lose ~1e-3 rad at position 8k); the rotation is fp32. inv_freq is the model's table
// (ops::rope_inv_freq, with rope_scaling or rope_freqs applied). Positions are consecutive, which is
// all the runtime needs, so no position array is uploaded.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace lords::cuda {

// In place. x (T, H, Dh) device, inv_freq (Dh/2) device; Dh even and <= ops::kMaxHeadDim.
// p0_dev: read p0 from device memory (CUDA-graph decode) instead of the argument.
void rope(float* x, int64_t p0, const float* inv_freq, int64_t T, int64_t H, int64_t Dh, cudaStream_t stream,
          const int64_t* p0_dev = nullptr);

// Training: n_seq sequences of T tokens, each from position 0 (row m at position m % T); inverse rotates
// by -a, the transpose, which is the backward of the rotation (dx = R^T dy). x (n_seq, T, H, Dh).
void rope_sequences(float* x, int64_t n_seq, int64_t T, bool inverse, const float* inv_freq, int64_t H, int64_t Dh,
                    cudaStream_t stream);

}  // namespace lords::cuda
