// CPU embedding backward: scatter-add of the output gradient into the table (see train/grad_embedding.h).
// Threads split the D columns, not the tokens: a repeated id never makes two threads add to the same
// element, no atomics are needed, and every element's sum runs in token order (deterministic).
#include "lords/train/grad_embedding.h"

#include <omp.h>

#include "lords/core/error.h"

namespace lords::train::cpu {

void embedding_bwd(float* dtable, const float* dout, const int32_t* tokens, int64_t M, int64_t V, int64_t D) {
  LORDS_ASSERT(M >= 0 && V > 0 && D > 0);
  for (int64_t t = 0; t < M; ++t) LORDS_ASSERT(tokens[t] >= 0 && tokens[t] < V);  // before any thread writes
#pragma omp parallel if (M * D >= (int64_t{1} << 15))
  {
    const int64_t nt = omp_get_num_threads(), it = omp_get_thread_num();
    const int64_t d0 = D * it / nt, d1 = D * (it + 1) / nt;
    for (int64_t t = 0; t < M; ++t) {
      float* dst = dtable + static_cast<int64_t>(tokens[t]) * D;
      const float* src = dout + t * D;
#pragma omp simd
      for (int64_t d = d0; d < d1; ++d) dst[d] += src[d];
    }
  }
}

}  // namespace lords::train::cpu
