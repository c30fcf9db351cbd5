// Token embedding on the GPU: the row gather out[t,:] = table[tokens[t],:] of ops/embedding.h, fp32.
// All pointers are device memory. The caller validates ids; an id outside [0, V) (a caller bug) gives a
// NaN row instead of reading outside the table.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace lords::cuda {

// out (T, D), table (V, D), tokens (T)
void embedding(float* out, const float* table, const int32_t* tokens, int64_t T, int64_t V, int64_t D,
               cudaStream_t stream);

}  // namespace lords::cuda
