// Block-wise absmax RTN against a brute-force reference: tail block, all-zero block, scale rounding
// before the code choice, and dequantization.
#include <gtest/gtest.h>

#include <cmath>

#include "lords/core/dtype.h"
#include "lords/quant/blockwise.h"
#include "quant/quant_test_util.h"

namespace lords::quant {
namespace {

float round_f16(float v) { return round_through(DType::F16, v); }

uint8_t brute_nearest(const Codebook& cb, float x) {
  int best = 0;
  for (int i = 1; i < cb.size(); ++i)
    if (std::fabs(x - cb.levels[static_cast<size_t>(i)]) < std::fabs(x - cb.levels[static_cast<size_t>(best)])) best = i;
  return static_cast<uint8_t>(best);
}

TEST(Blockwise, NumBlocks) {
  EXPECT_EQ(num_blocks(4096, 128), 32);
  EXPECT_EQ(num_blocks(4097, 128), 33);
  EXPECT_EQ(num_blocks(5, 128), 1);
}

TEST(Blockwise, MatchesBruteForceWithTailAndZeroBlock) {
  const int64_t N = 5, K = 77, G = 16;  // 5 blocks per row, the last one 13 wide
  std::vector<float> W = test::heavy_tailed(N, K, 42);
  for (int64_t k = 16; k < 32; ++k) W[static_cast<size_t>(2 * K + k)] = 0.0f;  // row 2, block 1: all zero
  for (int64_t k = 64; k < K; ++k) W[static_cast<size_t>(4 * K + k)] = 0.0f;   // row 4, tail block: all zero
  for (CodebookKind kind : {CodebookKind::NF, CodebookKind::INT}) {
    for (int bits : {2, 3, 4}) {
      const Codebook cb = make_codebook(kind, bits);
      const BlockwiseQuant q = quantize_blockwise(W.data(), N, K, G, cb, &round_f16);
      ASSERT_EQ(q.scales.size(), static_cast<size_t>(N * 5));
      ASSERT_EQ(q.codes.size(), static_cast<size_t>(N * K));
      std::vector<float> W_hat(static_cast<size_t>(N * K));
      dequantize_blockwise(q, cb, W_hat.data());
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t j = 0; j < 5; ++j) {
          float amax = 0;
          for (int64_t k = j * G; k < std::min(K, (j + 1) * G); ++k)
            amax = std::max(amax, std::fabs(W[static_cast<size_t>(n * K + k)]));
          const float s = round_f16(amax);
          ASSERT_EQ(q.scales[static_cast<size_t>(n * 5 + j)], s) << "n " << n << " block " << j;
          for (int64_t k = j * G; k < std::min(K, (j + 1) * G); ++k) {
            const size_t i = static_cast<size_t>(n * K + k);
            const uint8_t want = s == 0.0f ? brute_nearest(cb, 0.0f) : brute_nearest(cb, W[i] / s);
            ASSERT_EQ(q.codes[i], want) << cb.name() << " n " << n << " k " << k;
            ASSERT_EQ(W_hat[i], cb.levels[want] * s);
          }
        }
      }
      EXPECT_EQ(q.scales[static_cast<size_t>(2 * 5 + 1)], 0.0f);
      EXPECT_EQ(q.scales[static_cast<size_t>(4 * 5 + 4)], 0.0f);
      EXPECT_EQ(W_hat[static_cast<size_t>(2 * K + 20)], 0.0f);
    }
  }
}

TEST(Blockwise, AbsmaxElementIsExactWithoutRounding) {
  // With identity rounding the absmax element of each block maps to level +-1 exactly (NF: max level 1,
  // and -1 is a level too).
  const int64_t N = 3, K = 256, G = 64;
  const std::vector<float> W = test::heavy_tailed(N, K, 5);
  const Codebook cb = make_codebook(CodebookKind::NF, 4);
  const BlockwiseQuant q = quantize_blockwise(W.data(), N, K, G, cb, nullptr);
  std::vector<float> W_hat(static_cast<size_t>(N * K));
  dequantize_blockwise(q, cb, W_hat.data());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < K / G; ++j) {
      int64_t arg = j * G;
      for (int64_t k = j * G; k < (j + 1) * G; ++k)
        if (std::fabs(W[static_cast<size_t>(n * K + k)]) > std::fabs(W[static_cast<size_t>(n * K + arg)])) arg = k;
      EXPECT_EQ(W_hat[static_cast<size_t>(n * K + arg)], W[static_cast<size_t>(n * K + arg)]);
    }
}

TEST(Blockwise, ErrorShrinksWithBits) {
  const int64_t N = 16, K = 512, G = 128;
  const std::vector<float> W = test::heavy_tailed(N, K, 9);
  double prev = 1e30;
  for (int bits : {2, 3, 4}) {
    const Codebook cb = make_codebook(CodebookKind::NF, bits);
    const BlockwiseQuant q = quantize_blockwise(W.data(), N, K, G, cb, &round_f16);
    std::vector<float> W_hat(static_cast<size_t>(N * K));
    dequantize_blockwise(q, cb, W_hat.data());
    double err = 0, ref = 0;
    for (size_t i = 0; i < W.size(); ++i) {
      err += (W[i] - W_hat[i]) * static_cast<double>(W[i] - W_hat[i]);
      ref += W[i] * static_cast<double>(W[i]);
    }
    const double rel = std::sqrt(err / ref);
    EXPECT_LT(rel, prev);
    EXPECT_LT(rel, bits == 4 ? 0.15 : bits == 3 ? 0.3 : 0.7) << "nf" << bits;
    prev = rel;
  }
}

}  // namespace
}  // namespace lords::quant
