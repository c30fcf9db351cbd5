// Token embedding, training form. Forward is the row gather out[t,:] = table[tokens[t],:]
// (fp32: lords::ops::cpu::embedding); backward scatters the output gradient back into the table:
//   dtable[tokens[t],:] += dout[t,:]
// dtable is a parameter gradient: it ACCUMULATES (+=), a token repeated in the batch adds each time.
// M = tokens (batch x seq), V = vocab, D = hidden size. Ids are asserted in [0, V); callers validate.
//   ref:: templated on the float type (float, double), scalar loops, the spec.
//   cpu:: fp32, OpenMP over slices of D (every thread sees every token, so repeated ids never race and
//         the sum order is the token order, deterministic).
#pragma once

#include <cstdint>

namespace lords::train {

namespace ref {
// out (M, D), table (V, D), tokens (M)
template <class T>
void embedding_fwd(T* out, const T* table, const int32_t* tokens, int64_t M, int64_t V, int64_t D);
// dtable (V, D) accumulated, dout (M, D), tokens (M)
template <class T>
void embedding_bwd(T* dtable, const T* dout, const int32_t* tokens, int64_t M, int64_t V, int64_t D);
}  // namespace ref

namespace cpu {
void embedding_bwd(float* dtable, const float* dout, const int32_t* tokens, int64_t M, int64_t V, int64_t D);
}  // namespace cpu

}  // namespace lords::train
