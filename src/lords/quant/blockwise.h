// Block-wise round-to-nearest baseline (bitsandbytes-style absmax): every G consecutive input elements
// of a row share one scale s = max |w| over the block; q = nearest level of w / s. The last block of a
// row may be shorter when K is not a multiple of G. W_hat[n,k] = level[q[n,k]] * s[n, k/G].
#pragma once

#include <cstdint>
#include <vector>

#include "lords/quant/codebook.h"

namespace lords::quant {

inline int64_t num_blocks(int64_t K, int64_t G) { return (K + G - 1) / G; }

// Absmax of each block: (N, num_blocks(K, G)).
std::vector<float> block_absmax(const float* W, int64_t N, int64_t K, int64_t G);

struct BlockwiseQuant {
  int64_t N = 0, K = 0, G = 0;
  std::vector<float> scales;   // (N, num_blocks(K, G)), as stored (already rounded through storage dtype)
  std::vector<uint8_t> codes;  // (N, K)
};

// Scales are rounded through scale_dtype_round (e.g. fp16) *before* the codes are chosen, so the codes
// are optimal for the scales that will actually be stored.
BlockwiseQuant quantize_blockwise(const float* W, int64_t N, int64_t K, int64_t G, const Codebook& cb,
                                  float (*scale_round)(float));
// W_hat (N, K).
void dequantize_blockwise(const BlockwiseQuant& q, const Codebook& cb, float* W_hat);

}  // namespace lords::quant
