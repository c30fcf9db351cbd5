// Reference embedding gather and its scatter-add backward (see train/grad_embedding.h).
#include "lords/train/grad_embedding.h"

#include "lords/core/error.h"

namespace lords::train::ref {

template <class T>
void embedding_fwd(T* out, const T* table, const int32_t* tokens, int64_t M, int64_t V, int64_t D) {
  LORDS_ASSERT(M >= 0 && V > 0 && D > 0);
  for (int64_t t = 0; t < M; ++t) {
    const int64_t id = tokens[t];
    LORDS_ASSERT(id >= 0 && id < V);
    for (int64_t d = 0; d < D; ++d) out[t * D + d] = table[id * D + d];
  }
}

template <class T>
void embedding_bwd(T* dtable, const T* dout, const int32_t* tokens, int64_t M, int64_t V, int64_t D) {
  LORDS_ASSERT(M >= 0 && V > 0 && D > 0);
  // The gather copies table row tokens[t] to out row t, so d out[t,d] / d table[id,d] = [id == tokens[t]]:
  // each output row's gradient lands on its source row, summed over repeats.
  for (int64_t t = 0; t < M; ++t) {
    const int64_t id = tokens[t];
    LORDS_ASSERT(id >= 0 && id < V);
    for (int64_t d = 0; d < D; ++d) dtable[id * D + d] += dout[t * D + d];
  }
}

template void embedding_fwd<float>(float*, const float*, const int32_t*, int64_t, int64_t, int64_t);
template void embedding_fwd<double>(double*, const double*, const int32_t*, int64_t, int64_t, int64_t);
template void embedding_bwd<float>(float*, const float*, const int32_t*, int64_t, int64_t, int64_t);
template void embedding_bwd<double>(double*, const double*, const int32_t*, int64_t, int64_t, int64_t);

}  // namespace lords::train::ref
