// Block-wise absmax round-to-nearest (bitsandbytes / QLoRA style): s[n, j] = max |W[n, jG : (j+1)G]|,
// rounded through the storage dtype, then q = nearest level of w / s. A zero scale (all-zero block, or a
// scale that underflows in storage; anything below 1e-30) gives the code of the level nearest 0.
#include "lords/quant/blockwise.h"

#include <algorithm>
#include <cmath>

#include "lords/core/error.h"
#include "lords/quant/inner_parallel.h"
#include "lords/quant/nearest_kernel.h"

namespace lords::quant {

std::vector<float> block_absmax(const float* W, int64_t N, int64_t K, int64_t G) {
  LORDS_CHECK(G > 0, ErrorKind::Usage, "[blockwise] block size must be positive, got {}", G);
  const int64_t nb = num_blocks(K, G);
  std::vector<float> s(static_cast<size_t>(N * nb));
  detail::parallel_chunks(N, detail::rows_per_chunk(K), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      for (int64_t j = 0; j < nb; ++j) {
        const float* w = W + n * K + j * G;
        const int64_t len = std::min(G, K - j * G);
        float m = 0.0f;
        for (int64_t k = 0; k < len; ++k) m = std::max(m, std::fabs(w[k]));
        s[static_cast<size_t>(n * nb + j)] = m;
      }
    }
  });
  return s;
}

BlockwiseQuant quantize_blockwise(const float* W, int64_t N, int64_t K, int64_t G, const Codebook& cb,
                                  float (*scale_round)(float)) {
  BlockwiseQuant q;
  q.N = N;
  q.K = K;
  q.G = G;
  q.scales = block_absmax(W, N, K, G);
  if (scale_round != nullptr) {
    for (float& s : q.scales) s = scale_round(s);
  }
  q.codes.resize(static_cast<size_t>(N * K));
  const int64_t nb = num_blocks(K, G);
  const uint8_t zero_code = cb.nearest(0.0f);
  detail::parallel_chunks(N, detail::rows_per_chunk(K), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      for (int64_t j = 0; j < nb; ++j) {
        const float s = q.scales[static_cast<size_t>(n * nb + j)];
        const int64_t k0 = j * G, len = std::min(G, K - k0);
        // s = 0 (anything below 1e-30) gives zero_code for the whole block
        detail::nearest_codes(W + n * K + k0, &s, 0, len, cb, zero_code, q.codes.data() + n * K + k0);
      }
    }
  });
  return q;
}

void dequantize_blockwise(const BlockwiseQuant& q, const Codebook& cb, float* W_hat) {
  const int64_t nb = num_blocks(q.K, q.G);
  LORDS_ASSERT(q.scales.size() == static_cast<size_t>(q.N * nb) && q.codes.size() == static_cast<size_t>(q.N * q.K));
  const float* lv = cb.levels.data();
  detail::parallel_chunks(q.N, detail::rows_per_chunk(q.K), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      for (int64_t k = 0; k < q.K; ++k) {
        const uint8_t c = q.codes[static_cast<size_t>(n * q.K + k)];
        W_hat[n * q.K + k] = lv[c] * q.scales[static_cast<size_t>(n * nb + k / q.G)];
      }
    }
  });
}

}  // namespace lords::quant
