// Reference masked cross-entropy with its gradient (see train/grad_cross_entropy.h). Three passes per
// row: max, fp64 sum of exp(logit - max), then the loss term and the gradient row.
#include "lords/train/grad_cross_entropy.h"

#include <algorithm>
#include <cmath>

#include "lords/core/error.h"

namespace lords::train::ref {

template <class T>
CrossEntropyResult cross_entropy_fwd_bwd(
    T* dlogits, const T* logits, const int32_t* targets, const float* weights, int64_t M, int64_t V) {
  LORDS_ASSERT(M >= 0 && V > 0);
  // The normalizer first: the gradient of a mean divides by it.
  CrossEntropyResult r;
  for (int64_t m = 0; m < M; ++m) {
    const float wm = weights ? weights[m] : 1.0f;
    LORDS_ASSERT(wm >= 0.0f && std::isfinite(wm) && targets[m] < V);
    r.count += row_weight(targets, weights, m);
  }
  double total = 0;
  for (int64_t m = 0; m < M; ++m) {
    const T* l = logits + m * V;
    T* g = dlogits ? dlogits + m * V : nullptr;
    const double wm = weights ? weights[m] : 1.0f;
    const int64_t y = targets[m];
    if (y < 0 || wm == 0.0) {  // not counted: no loss, zero gradient
      if (g) std::fill(g, g + V, T(0));
      continue;
    }
    double mx = l[0];
    for (int64_t v = 1; v < V; ++v) mx = std::max(mx, static_cast<double>(l[v]));
    double sum = 0;  // in [1, V]: the max term contributes exp(0) = 1, so log(sum) is safe
    for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(l[v]) - mx);
    const double lse = mx + std::log(sum);
    const double ly = l[y];  // read before g overwrites it (dlogits may alias logits)
    total += wm * (lse - ly);
    if (!g) continue;
    // d loss / d l_v = w (softmax_v - [v == y]) / count: term 1 from lse, term 2 from -l_y.
    const double scale = wm / r.count;
    for (int64_t v = 0; v < V; ++v) {
      const double p = std::exp(static_cast<double>(l[v]) - lse);
      g[v] = static_cast<T>((v == y ? p - 1.0 : p) * scale);
    }
  }
  r.loss = r.count > 0 ? total / r.count : 0.0;
  return r;
}

template CrossEntropyResult cross_entropy_fwd_bwd<float>(
    float*, const float*, const int32_t*, const float*, int64_t, int64_t);
template CrossEntropyResult cross_entropy_fwd_bwd<double>(
    double*, const double*, const int32_t*, const float*, int64_t, int64_t);

}  // namespace lords::train::ref
