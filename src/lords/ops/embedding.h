// Token embedding: a row gather out[t,:] = table[tokens[t],:]. Ids are asserted in range here; the
// runtime rejects bad ids with an Error before calling.
#pragma once

#include <cstdint>

namespace lords::ops {

namespace ref {
// out (T, D), table (V, D), tokens (T) in [0, V)
void embedding(float* out, const float* table, const int32_t* tokens, int64_t T, int64_t V, int64_t D);
}  // namespace ref
namespace cpu {
void embedding(float* out, const float* table, const int32_t* tokens, int64_t T, int64_t V, int64_t D);
}  // namespace cpu

}  // namespace lords::ops
