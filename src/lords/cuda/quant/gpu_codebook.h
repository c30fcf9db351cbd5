// A codebook as the GPU kernels take it: a fixed-size struct passed by value (levels, midpoints, the
// code of the level nearest 0), and the nearest-level rule of quant/nearest_kernel.h for the device:
// code(w, s) = number of midpoints strictly below w / s (ties to the lower level); |s| < 1e-30 or a
// NaN quotient gives the zero-level code. The division is IEEE round-to-nearest (__fdiv_rn, whatever
// the compile flags), as the CPU's is, so equal inputs give equal codes.
// Included by .cu files: nothing here may pull in fmt (nvcc rejects its consteval format checks).
#pragma once

#include <cstdint>

#include "lords/quant/codebook.h"

namespace lords::cuda {

// |s| below this: W / S is meaningless. Equal to quant::detail::kTinyScale (static_assert in
// gpu_codebook.cpp; that header holds AVX2 code the device compiler should not see).
inline constexpr float kGpuTinyScale = 1e-30f;

struct GpuCodebook {
  float levels[16];  // ascending, n_levels used
  float mid[15];     // n_levels - 1 decision boundaries, mid[i] = (levels[i] + levels[i+1]) / 2
  int n_levels;
  uint8_t zero;      // code of the level nearest 0
};

// Throws Error{Unsupported} for a codebook of more than 16 levels.
GpuCodebook gpu_codebook(const quant::Codebook& cb);

#if defined(__CUDACC__)
// mid usually points at a shared-memory copy of the midpoints.
__device__ __forceinline__ uint8_t gpu_code(float w, float s, const float* mid, int n_mid, uint8_t zero) {
  if (fabsf(s) < kGpuTinyScale) return zero;
  const float x = __fdiv_rn(w, s);
  if (x != x) return zero;  // NaN quotient
  int c = 0;
  for (int j = 0; j < n_mid; ++j) c += x > mid[j] ? 1 : 0;
  return static_cast<uint8_t>(c);
}
#endif

}  // namespace lords::cuda
