// Internal to lords::quant (blockwise.cpp, lords_solver.cpp): the vectorized nearest-level search.
// code(x) = number of codebook midpoints strictly below x, which is Codebook::nearest (ties go to the
// lower level); x = w / s, and a scale with |s| < kTinyScale or a NaN quotient gives the code of the level
// nearest 0. AVX2 (the CPU floor, see CMakeLists.txt): 8 quotients at a time, one compare+subtract per
// midpoint, the midpoint count a template constant so the chain unrolls.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "lords/quant/codebook.h"

namespace lords::quant::detail {

inline constexpr float kTinyScale = 1e-30f;  // |S| below this: W / S is meaningless, use the level nearest 0

// Scalar reference of one code; the vector path must agree with it bit for bit.
inline uint8_t code_scalar(float w, float s, const Codebook& cb, uint8_t zero) {
  return std::fabs(s) < kTinyScale ? zero : cb.nearest(w / s);
}

// Low byte of each 32-bit lane of v, in order, as 8 bytes at q.
inline void store_low_bytes(__m256i v, uint8_t* q) {
  const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  //
                                        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i b = _mm256_shuffle_epi8(v, pick);
  const uint64_t lo = static_cast<uint32_t>(_mm_cvtsi128_si32(_mm256_castsi256_si128(b)));
  const uint64_t hi = static_cast<uint32_t>(_mm_cvtsi128_si32(_mm256_extracti128_si256(b, 1)));
  const uint64_t packed = lo | (hi << 32);
  std::memcpy(q, &packed, 8);
}

// q[k] = code(w[k] / s[k]) for k < n; s_stride 0 means one scale s[0] for all (a block-wise scale).
template <int NM>
void codes_avx2(const float* w, const float* s, int64_t s_stride, int64_t n, const Codebook& cb, uint8_t zero,
                uint8_t* q) {
  __m256 mid[NM];
  for (int j = 0; j < NM; ++j) mid[j] = _mm256_set1_ps(cb.midpoints[static_cast<size_t>(j)]);
  const __m256 tiny = _mm256_set1_ps(kTinyScale);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i zero_v = _mm256_set1_epi32(zero);
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    const __m256 sv = s_stride != 0 ? _mm256_loadu_ps(s + k) : _mm256_set1_ps(s[0]);
    const __m256 x = _mm256_div_ps(_mm256_loadu_ps(w + k), sv);
    __m256i c = _mm256_setzero_si256();
    for (int j = 0; j < NM; ++j)  // each true compare is all-ones = -1
      c = _mm256_sub_epi32(c, _mm256_castps_si256(_mm256_cmp_ps(x, mid[j], _CMP_GT_OQ)));
    const __m256 bad = _mm256_or_ps(_mm256_cmp_ps(_mm256_and_ps(sv, abs_mask), tiny, _CMP_LT_OQ),
                                    _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    c = _mm256_blendv_epi8(c, zero_v, _mm256_castps_si256(bad));
    store_low_bytes(c, q + k);
  }
  for (; k < n; ++k) q[k] = code_scalar(w[k], s[s_stride != 0 ? k : 0], cb, zero);
}

inline void nearest_codes(const float* w, const float* s, int64_t s_stride, int64_t n, const Codebook& cb,
                          uint8_t zero, uint8_t* q) {
  switch (cb.midpoints.size()) {
    case 3: return codes_avx2<3>(w, s, s_stride, n, cb, zero, q);
    case 7: return codes_avx2<7>(w, s, s_stride, n, cb, zero, q);
    case 15: return codes_avx2<15>(w, s, s_stride, n, cb, zero, q);
    default:
      for (int64_t k = 0; k < n; ++k) q[k] = code_scalar(w[k], s[s_stride != 0 ? k : 0], cb, zero);
  }
}

}  // namespace lords::quant::detail
