// Reference dense linear: Y = X W^T (+ bias), one fp64 dot product per output (see ops/matmul.h).
#include "lords/ops/matmul.h"

#include "lords/core/error.h"

namespace lords::ops::ref {

void matmul(float* Y, const float* X, const float* W, const float* bias, int64_t M, int64_t N, int64_t K) {
  LORDS_ASSERT(M >= 0 && N >= 0 && K >= 0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      const float* x = X + m * K;
      const float* w = W + n * K;
      double acc = bias ? bias[n] : 0.0;
      for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(x[k]) * w[k];
      Y[m * N + n] = static_cast<float>(acc);
    }
}

}  // namespace lords::ops::ref
