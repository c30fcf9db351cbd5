// LoRDS initialization: parity rank, the exact small-SVD of the block-scale matrix (exact recovery when
// r >= number of blocks, rel_err equal to the directly computed one, short tail block), lowrank_product.
#include <gtest/gtest.h>

#include <cmath>

#include "lords/quant/blockwise.h"
#include "lords/quant/lords_init.h"
#include "quant/quant_test_util.h"

namespace lords::quant {
namespace {

TEST(LordsInit, ParityRank) {
  EXPECT_EQ(parity_rank(4096, 4096, 128), 16);
  EXPECT_EQ(parity_rank(1024, 4096, 128), 6);
  EXPECT_EQ(parity_rank(14336, 4096, 128), 24);
  EXPECT_EQ(parity_rank(4096, 14336, 128), 24);
  EXPECT_EQ(parity_rank(4096, 4096, 64), 32);
  EXPECT_EQ(parity_rank(4, 4, 128), 1);  // clamped up to 1
  EXPECT_EQ(parity_rank(2, 64, 1), 1);   // floor(128 / 66) = 1
  EXPECT_EQ(parity_rank(3, 300, 1), 2);  // floor(900 / 303) = 2, min(N, K) = 3
}

// Block-scale matrix S (N, K) expanded from the absmax, in double.
std::vector<double> block_scale_matrix(const std::vector<float>& W, int64_t N, int64_t K, int64_t G) {
  const std::vector<float> s = block_absmax(W.data(), N, K, G);
  const int64_t nb = num_blocks(K, G);
  std::vector<double> S(static_cast<size_t>(N * K));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) S[static_cast<size_t>(n * K + k)] = s[static_cast<size_t>(n * nb + k / G)];
  return S;
}

double rel_diff(const std::vector<double>& S, const std::vector<double>& BA) {
  double num = 0, den = 0;
  for (size_t i = 0; i < S.size(); ++i) {
    num += (S[i] - BA[i]) * (S[i] - BA[i]);
    den += S[i] * S[i];
  }
  return std::sqrt(num / den);
}

struct Shape {
  int64_t N, K, G;
};

TEST(LordsInit, ExactWhenRankCoversBlocks) {
  for (const Shape& sh : {Shape{40, 256, 32}, Shape{33, 100, 16}, Shape{6, 512, 32}, Shape{64, 70, 64}}) {
    const std::vector<float> W = test::heavy_tailed_rows(sh.N, sh.K, 17);
    const int64_t nb = num_blocks(sh.K, sh.G);
    const std::vector<double> S = block_scale_matrix(W, sh.N, sh.K, sh.G);
    for (int64_t r : {nb, nb + 3}) {
      const SvdInit init = svd_init_from_blocks(W.data(), sh.N, sh.K, sh.G, r);
      ASSERT_EQ(init.scale.r, r);
      ASSERT_EQ(init.scale.B.size(), static_cast<size_t>(sh.N * r));
      ASSERT_EQ(init.scale.A.size(), static_cast<size_t>(r * sh.K));
      EXPECT_EQ(init.singular_values.size(), static_cast<size_t>(std::min(sh.N, nb)));
      const std::vector<double> BA = test::product_ref(init.scale.B, init.scale.A, sh.N, sh.K, r);
      EXPECT_LT(rel_diff(S, BA), 1e-5) << "N " << sh.N << " K " << sh.K << " G " << sh.G << " r " << r;
      EXPECT_LT(init.rel_err, 1e-6);
      if (r > std::min(sh.N, nb)) {  // components beyond rank(S) are zero
        for (int64_t n = 0; n < sh.N; ++n) EXPECT_EQ(init.scale.B[static_cast<size_t>(n * r + r - 1)], 0.0f);
        for (int64_t k = 0; k < sh.K; ++k) EXPECT_EQ(init.scale.A[static_cast<size_t>((r - 1) * sh.K + k)], 0.0f);
      }
    }
  }
}

TEST(LordsInit, RelErrMatchesDirectComputation) {
  for (const Shape& sh : {Shape{48, 512, 32}, Shape{30, 200, 32}, Shape{128, 384, 16}}) {
    const std::vector<float> W = test::heavy_tailed_rows(sh.N, sh.K, 23);
    const std::vector<double> S = block_scale_matrix(W, sh.N, sh.K, sh.G);
    double prev_err = 2.0;
    for (int64_t r : {1, 2, 5, 9}) {
      const SvdInit init = svd_init_from_blocks(W.data(), sh.N, sh.K, sh.G, r);
      const std::vector<double> BA = test::product_ref(init.scale.B, init.scale.A, sh.N, sh.K, r);
      const double direct = rel_diff(S, BA);
      EXPECT_NEAR(init.rel_err, direct, 1e-5 + 1e-4 * direct) << "N " << sh.N << " K " << sh.K << " r " << r;
      EXPECT_LE(init.rel_err, prev_err);
      prev_err = init.rel_err;
      // Singular values descending; the leading component is oriented positive.
      for (size_t i = 1; i < init.singular_values.size(); ++i)
        EXPECT_GE(init.singular_values[i - 1], init.singular_values[i]);
      double bsum = 0;
      for (int64_t n = 0; n < sh.N; ++n) bsum += init.scale.B[static_cast<size_t>(n * r)];
      EXPECT_GT(bsum, 0);
    }
  }
}

TEST(LordsInit, SingularValuesMatchFrobenius) {
  const int64_t N = 20, K = 150, G = 32;
  const std::vector<float> W = test::heavy_tailed(N, K, 4);
  const SvdInit init = svd_init_from_blocks(W.data(), N, K, G, 2);
  const std::vector<double> S = block_scale_matrix(W, N, K, G);
  double fro = 0, ssq = 0;
  for (double v : S) fro += v * v;
  for (double v : init.singular_values) ssq += v * v;
  EXPECT_NEAR(ssq / fro, 1.0, 1e-12);
}

TEST(LordsInit, LowrankProduct) {
  LowRankScale s;
  s.N = 7;
  s.K = 13;
  s.r = 3;
  for (int64_t i = 0; i < s.N * s.r; ++i) s.B.push_back(static_cast<float>(i % 5) - 2.0f);
  for (int64_t i = 0; i < s.r * s.K; ++i) s.A.push_back(static_cast<float>(i % 7) * 0.5f - 1.0f);
  std::vector<float> S(static_cast<size_t>(s.N * s.K));
  lowrank_product(s, S.data());
  const std::vector<double> ref = test::product_ref(s.B, s.A, s.N, s.K, s.r);
  for (size_t i = 0; i < S.size(); ++i) EXPECT_EQ(S[i], ref[i]) << i;  // small integers/halves: exact
  LowRankScale z;
  z.N = 2;
  z.K = 3;
  z.r = 0;
  std::vector<float> Z(6, 1.0f);
  lowrank_product(z, Z.data());
  for (float v : Z) EXPECT_EQ(v, 0.0f);
}

TEST(LordsInit, ZeroMatrix) {
  const std::vector<float> W(static_cast<size_t>(8 * 64), 0.0f);
  const SvdInit init = svd_init_from_blocks(W.data(), 8, 64, 16, 2);
  EXPECT_EQ(init.rel_err, 0.0);
  for (float v : init.scale.B) EXPECT_EQ(v, 0.0f);
}

}  // namespace
}  // namespace lords::quant
