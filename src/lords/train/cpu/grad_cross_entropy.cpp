// CPU masked cross-entropy with its gradient (see train/grad_cross_entropy.h). Rows in parallel, three
// passes per row: max; exp(logit - max) stored into the gradient row (one exp per logit) with an fp64
// sum; then one scale of that row and the -1 at the target. The loss total is an fp64 reduction.
#include "lords/train/grad_cross_entropy.h"

#include <algorithm>
#include <cmath>

#include "lords/core/error.h"

namespace lords::train::cpu {

CrossEntropyResult cross_entropy_fwd_bwd(
    float* dlogits, const float* logits, const int32_t* targets, const float* weights, int64_t M, int64_t V) {
  LORDS_ASSERT(M >= 0 && V > 0);
  CrossEntropyResult r;
  for (int64_t m = 0; m < M; ++m) {
    const float wm = weights ? weights[m] : 1.0f;
    LORDS_ASSERT(wm >= 0.0f && std::isfinite(wm) && targets[m] < V);
    r.count += row_weight(targets, weights, m);
  }
  const double count = r.count;
  double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (M * V >= (int64_t{1} << 15))
  for (int64_t m = 0; m < M; ++m) {
    const float* l = logits + m * V;
    float* g = dlogits ? dlogits + m * V : nullptr;
    const float wm = weights ? weights[m] : 1.0f;
    const int64_t y = targets[m];
    if (y < 0 || wm == 0.0f) {  // not counted: no loss, zero gradient
      if (g) std::fill(g, g + V, 0.0f);
      continue;
    }
    float mx = l[0];
#pragma omp simd reduction(max : mx)
    for (int64_t v = 0; v < V; ++v) mx = std::max(mx, l[v]);
    const float ly = l[y];  // read before g overwrites it (dlogits may alias logits)
    double sum = 0;         // >= 1: the max logit contributes exp(0)
    if (g) {
      for (int64_t v = 0; v < V; ++v) {
        g[v] = std::exp(l[v] - mx);
        sum += g[v];
      }
    } else {
      for (int64_t v = 0; v < V; ++v) sum += std::exp(l[v] - mx);
    }
    total += static_cast<double>(wm) * (static_cast<double>(mx) + std::log(sum) - ly);
    if (!g) continue;
    // d loss / d l_v = w (softmax_v - [v == y]) / count: term 1 from the log-sum-exp, term 2 from -l_y.
    const float scale = static_cast<float>(static_cast<double>(wm) / (count * sum));
#pragma omp simd
    for (int64_t v = 0; v < V; ++v) g[v] *= scale;
    g[y] -= static_cast<float>(wm / count);
  }
  r.loss = count > 0 ? total / count : 0.0;
  return r;
}

}  // namespace lords::train::cpu
