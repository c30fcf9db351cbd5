// Reference causal GQA attention over a KV cache (see ops/attention.h). Two passes per query row so no
// score buffer is needed: pass 1 finds the max score, pass 2 sums exp(s - max) and the weighted values.
#include "lords/ops/attention.h"

#include <cmath>
#include <algorithm>
#include <array>

#include "lords/core/error.h"

namespace lords::ops::ref {

namespace {
double score(const float* q, const float* k, int64_t Dh, double scale) {
  double s = 0;
  for (int64_t d = 0; d < Dh; ++d) s += static_cast<double>(q[d]) * k[d];
  return s * scale;
}
}  // namespace

void attention(float* out, const float* q, const float* k_cache, const float* v_cache, const AttentionShape& s) {
  LORDS_ASSERT(s.T >= 0 && s.p0 >= 0 && s.Hkv > 0 && s.H % s.Hkv == 0 && s.Dh > 0 && s.Dh <= kMaxHeadDim);
  const int64_t group = s.H / s.Hkv, row = s.Hkv * s.Dh;  // row: one cached position
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.Dh));
  for (int64_t t = 0; t < s.T; ++t)
    for (int64_t h = 0; h < s.H; ++h) {
      const float* qv = q + (t * s.H + h) * s.Dh;
      const int64_t g = h / group, n_keys = s.p0 + t + 1;  // causal: keys 0..p0+t
      double mx = -INFINITY;
      for (int64_t j = 0; j < n_keys; ++j) mx = std::max(mx, score(qv, k_cache + j * row + g * s.Dh, s.Dh, scale));
      double sum = 0;
      std::array<double, kMaxHeadDim> acc{};
      for (int64_t j = 0; j < n_keys; ++j) {
        const double p = std::exp(score(qv, k_cache + j * row + g * s.Dh, s.Dh, scale) - mx);
        sum += p;
        const float* vv = v_cache + j * row + g * s.Dh;
        for (int64_t d = 0; d < s.Dh; ++d) acc[static_cast<size_t>(d)] += p * vv[d];
      }
      float* o = out + (t * s.H + h) * s.Dh;
      for (int64_t d = 0; d < s.Dh; ++d) o[d] = static_cast<float>(acc[static_cast<size_t>(d)] / sum);
    }
}

}  // namespace lords::ops::ref
