// CPU causal GQA attention (see ops/attention.h). Each (t, h) query row is one OpenMP task (dynamic
// schedule: causal rows have different lengths). Within a row, keys are visited in tiles of kKeyTile
// with an online softmax (flash-attention recurrence): scores of a tile go to a stack buffer, the
// running max m and denominator l are updated once per tile, and the fp32 accumulator, which lives
// in the output row itself, is rescaled by exp(m_old - m_new) only when the max grows. No scratch
// memory, one pass over K and V. Dot products and value updates are AVX2/FMA over Dh.
#include "lords/ops/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "lords/core/error.h"

namespace lords::ops::cpu {

namespace {

constexpr int64_t kKeyTile = 64;  // scores per tile: 256 B of stack, amortizes the rescale

float dot(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  // Horizontal sum of the 8 lanes.
  __m256 acc = _mm256_add_ps(acc0, acc1);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  float r = _mm_cvtss_f32(s);
  for (; i < n; ++i) r += a[i] * b[i];
  return r;
}

// y = y * c + p * x
void scale_axpy(float* y, float c, float p, const float* x, int64_t n) {
  const __m256 vc = _mm256_set1_ps(c), vp = _mm256_set1_ps(p);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(vp, _mm256_loadu_ps(x + i), _mm256_mul_ps(vc, _mm256_loadu_ps(y + i))));
  for (; i < n; ++i) y[i] = y[i] * c + p * x[i];
}

// One query row against keys 0..n_keys-1 of kv head g. o (Dh) receives the result.
void attend_row(float* o, const float* q, const float* k, const float* v, int64_t n_keys, int64_t row,
                int64_t Dh, float scale) {
  float s[kKeyTile];
  float m = -INFINITY, l = 0.0f;
  std::fill(o, o + Dh, 0.0f);
  for (int64_t j0 = 0; j0 < n_keys; j0 += kKeyTile) {
    const int64_t nj = std::min(kKeyTile, n_keys - j0);
    float tile_max = -INFINITY;
    for (int64_t j = 0; j < nj; ++j) {
      s[j] = dot(q, k + (j0 + j) * row, Dh) * scale;
      tile_max = std::max(tile_max, s[j]);
    }
    const float m_new = std::max(m, tile_max);
    float c = m == -INFINITY ? 0.0f : std::exp(m - m_new);  // rescale of what was accumulated
    l *= c;
    for (int64_t j = 0; j < nj; ++j) {
      const float p = std::exp(s[j] - m_new);
      l += p;
      scale_axpy(o, c, p, v + (j0 + j) * row, Dh);
      c = 1.0f;  // the rescale applies once per tile
    }
    m = m_new;
  }
  const float inv = 1.0f / l;
  for (int64_t d = 0; d < Dh; ++d) o[d] *= inv;
}

}  // namespace

void attention(float* out, const float* q, const float* k_cache, const float* v_cache, const AttentionShape& s) {
  LORDS_ASSERT(s.T >= 0 && s.p0 >= 0 && s.Hkv > 0 && s.H % s.Hkv == 0 && s.Dh > 0 && s.Dh <= kMaxHeadDim);
  const int64_t group = s.H / s.Hkv, row = s.Hkv * s.Dh;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.Dh));
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (s.T * s.H * (s.p0 + s.T) * s.Dh >= (int64_t{1} << 16))
  for (int64_t t = 0; t < s.T; ++t)
    for (int64_t h = 0; h < s.H; ++h) {
      const int64_t g = h / group;
      attend_row(out + (t * s.H + h) * s.Dh, q + (t * s.H + h) * s.Dh, k_cache + g * s.Dh, v_cache + g * s.Dh,
                 s.p0 + t + 1, row, s.Dh, scale);
    }
}

}  // namespace lords::ops::cpu
