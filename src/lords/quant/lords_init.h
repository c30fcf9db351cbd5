// LoRDS initialization: the block absmax scale matrix S (N, K) = s (N, nb) expanded along K, and its
// best rank-r approximation S ~ B A with B = U_r Sigma_r^1/2 (N, r), A = Sigma_r^1/2 V_r^T (r, K).
//
// The SVD is exact and cheap: S = s E where E (nb, K) is the block-expansion matrix with E E^T = D =
// diag(block lengths). So S = (s D^1/2)(D^-1/2 E) and D^-1/2 E has orthonormal rows: the singular
// values and left vectors of S are those of the small (N, nb) matrix s D^1/2 (LAPACK gesdd), and the
// right vectors are V^T D^-1/2 E. No randomized SVD, no (N, K) decomposition.
#pragma once

#include <cstdint>
#include <vector>

namespace lords::quant {

// Parity rank: the rank whose B, A hold as many floats as block-wise scales: floor(N*K / (G*(N+K))),
// clamped to [1, min(N, K)].
int64_t parity_rank(int64_t N, int64_t K, int64_t G);

struct LowRankScale {
  int64_t N = 0, K = 0, r = 0;
  std::vector<float> B;  // (N, r)
  std::vector<float> A;  // (r, K)
};

struct SvdInit {
  LowRankScale scale;
  double rel_err = 0;  // ||S - BA||_F / ||S||_F, exact (from the discarded singular values)
  std::vector<double> singular_values;  // all singular values of S, descending
};

// S from block absmax with block size G, truncated to rank r (r may exceed rank(S): extra
// components are zero and the reconstruction is exact).
SvdInit svd_init_from_blocks(const float* W, int64_t N, int64_t K, int64_t G, int64_t r);
// The same from the block absmax s (N, num_blocks(K, G)) already computed (e.g. on the GPU).
SvdInit svd_init_from_absmax(const float* s, int64_t N, int64_t K, int64_t G, int64_t r);

// S = B A materialized (N, K); sgemm.
void lowrank_product(const LowRankScale& s, float* S);

}  // namespace lords::quant
