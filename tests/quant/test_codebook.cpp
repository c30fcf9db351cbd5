// Codebooks: NF4 against bitsandbytes' published table, NF3/NF2 structure, INT grids, nearest() against
// brute force, the normal quantile, and name parsing.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "lords/core/error.h"
#include "lords/quant/codebook.h"

namespace lords::quant {
namespace {

// bitsandbytes functional.py NF4 table (the QLoRA data type), float32 values printed by Python.
constexpr double kNf4Bnb[16] = {-1.0,
                                -0.6961928009986877,
                                -0.5250730514526367,
                                -0.39491748809814453,
                                -0.28444138169288635,
                                -0.18477343022823334,
                                -0.09105003625154495,
                                0.0,
                                0.07958029955625534,
                                0.16093020141124725,
                                0.24611230194568634,
                                0.33791524171829224,
                                0.44070982933044434,
                                0.5626170039176941,
                                0.7229568362236023,
                                1.0};

TEST(Codebook, Nf4MatchesBitsandbytes) {
  const Codebook cb = make_codebook(CodebookKind::NF, 4);
  ASSERT_EQ(cb.size(), 16);
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(cb.levels[static_cast<size_t>(i)], kNf4Bnb[i], 1e-6) << "level " << i;
  EXPECT_EQ(cb.name(), "nf4");
}

TEST(Codebook, NfLowBitStructure) {
  for (int bits : {2, 3}) {
    const Codebook cb = make_codebook(CodebookKind::NF, bits);
    ASSERT_EQ(cb.size(), 1 << bits);
    int pos = 0, neg = 0, zero = 0;
    for (size_t i = 0; i < cb.levels.size(); ++i) {
      if (i > 0) {
        EXPECT_LT(cb.levels[i - 1], cb.levels[i]);
      }
      pos += cb.levels[i] > 0;
      neg += cb.levels[i] < 0;
      zero += cb.levels[i] == 0.0f;
    }
    EXPECT_EQ(cb.levels.back(), 1.0f);
    EXPECT_EQ(zero, 1);
    EXPECT_EQ(pos, neg + 1) << "one more positive level than negative";
    // Asymmetric: the positive side is finer, so the grid is not mirror-symmetric around 0.
    bool mirrored = true;
    for (size_t i = 0; i + 1 < cb.levels.size(); ++i)
      mirrored = mirrored && std::fabs(cb.levels[i + 1] + cb.levels[cb.levels.size() - 1 - i]) < 1e-6f;
    EXPECT_FALSE(mirrored);
    ASSERT_EQ(cb.midpoints.size(), cb.levels.size() - 1);
    for (size_t i = 0; i < cb.midpoints.size(); ++i)
      EXPECT_FLOAT_EQ(cb.midpoints[i], 0.5f * (cb.levels[i] + cb.levels[i + 1]));
  }
}

TEST(Codebook, NfNegativeEndIsMinusOne) {
  // Both linspaces start at the offset, so the most negative level is -ppf(offset) / ppf(offset) = -1 in the
  // LoftQ construction; bitsandbytes' NF4 table confirms (-1.0 first).
  for (int bits : {2, 3, 4}) EXPECT_FLOAT_EQ(make_codebook(CodebookKind::NF, bits).levels.front(), -1.0f);
}

TEST(Codebook, IntLevels) {
  const Codebook c4 = make_codebook(CodebookKind::INT, 4);
  ASSERT_EQ(c4.size(), 16);
  for (int i = 0; i < 16; ++i) EXPECT_FLOAT_EQ(c4.levels[static_cast<size_t>(i)], static_cast<float>(i - 8) / 7.0f);
  const Codebook c3 = make_codebook(CodebookKind::INT, 3);
  ASSERT_EQ(c3.size(), 8);
  EXPECT_FLOAT_EQ(c3.levels.front(), -4.0f / 3.0f);
  EXPECT_FLOAT_EQ(c3.levels.back(), 1.0f);
  const Codebook c2 = make_codebook(CodebookKind::INT, 2);
  EXPECT_EQ(c2.levels, (std::vector<float>{-2.0f, -1.0f, 0.0f, 1.0f}));
  EXPECT_EQ(c2.name(), "int2");
}

uint8_t brute_nearest(const Codebook& cb, float x) {
  if (std::isnan(x)) x = 0.0f;
  int best = 0;
  for (int i = 1; i < cb.size(); ++i) {
    // strict <: ties keep the lower index
    if (std::fabs(x - cb.levels[static_cast<size_t>(i)]) < std::fabs(x - cb.levels[static_cast<size_t>(best)])) best = i;
  }
  return static_cast<uint8_t>(best);
}

TEST(Codebook, NearestMatchesBruteForce) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.6f, 1.6f);
  for (CodebookKind kind : {CodebookKind::NF, CodebookKind::INT}) {
    for (int bits : {2, 3, 4}) {
      const Codebook cb = make_codebook(kind, bits);
      for (int t = 0; t < 20000; ++t) {
        const float x = u(rng);
        ASSERT_EQ(cb.nearest(x), brute_nearest(cb, x)) << cb.name() << " x=" << x;
      }
      // Levels, the exact midpoints (ties go low), and their float neighbours.
      for (size_t i = 0; i < cb.midpoints.size(); ++i) {
        const float m = cb.midpoints[i];
        EXPECT_EQ(cb.nearest(m), i) << cb.name() << " midpoint " << i;
        EXPECT_EQ(cb.nearest(std::nextafter(m, 10.0f)), i + 1);
        EXPECT_EQ(cb.nearest(std::nextafter(m, -10.0f)), i);
      }
      for (int i = 0; i < cb.size(); ++i) EXPECT_EQ(cb.nearest(cb.levels[static_cast<size_t>(i)]), i);
      const float inf = std::numeric_limits<float>::infinity();
      EXPECT_EQ(cb.nearest(inf), cb.size() - 1);
      EXPECT_EQ(cb.nearest(-inf), 0);
      EXPECT_EQ(cb.levels[cb.nearest(std::nanf(""))], 0.0f);
      EXPECT_EQ(cb.levels[cb.nearest(0.0f)], 0.0f);
    }
  }
}

TEST(Codebook, NormalQuantile) {
  EXPECT_EQ(normal_quantile(0.5), 0.0);
  EXPECT_NEAR(normal_quantile(0.975), 1.959963984540054, 1e-14);
  EXPECT_NEAR(normal_quantile(0.8413447460685429), 1.0, 1e-14);
  EXPECT_NEAR(normal_quantile(1e-10), -6.361340902404056, 1e-12);
  // Phi(x(p)) = p across both tails and the central region.
  for (double p : {1e-300, 1e-20, 1e-5, 0.01, 0.02425, 0.2, 0.45, 0.55, 0.9, 0.97575, 0.9677083, 0.999999}) {
    const double x = normal_quantile(p);
    const double phi = 0.5 * std::erfc(-x / std::sqrt(2.0));
    EXPECT_NEAR(phi / p, 1.0, 1e-13) << "p=" << p;
    // 1 - p is exact only for p >= 2^-53 or so; symmetry is checked where it can hold.
    if (p >= 1e-5) {
      EXPECT_NEAR(normal_quantile(1.0 - p), -x, 1e-10 * std::max(1.0, std::fabs(x))) << "p=" << p;
    }
  }
  EXPECT_TRUE(std::isinf(normal_quantile(0.0)) && normal_quantile(0.0) < 0);
  EXPECT_TRUE(std::isinf(normal_quantile(1.0)) && normal_quantile(1.0) > 0);
}

TEST(Codebook, NamesAndValidation) {
  EXPECT_EQ(codebook_kind_from_name("nf"), CodebookKind::NF);
  EXPECT_EQ(codebook_kind_from_name("int"), CodebookKind::INT);
  EXPECT_THROW(codebook_kind_from_name("fp4"), Error);
  EXPECT_THROW(make_codebook(CodebookKind::NF, 5), Error);
  EXPECT_THROW(make_codebook(CodebookKind::INT, 1), Error);

  const Codebook nf3 = make_codebook(CodebookKind::NF, 3);
  const Codebook back = codebook_from_levels(CodebookKind::NF, 3, nf3.levels);
  EXPECT_EQ(back.levels, nf3.levels);
  EXPECT_EQ(back.midpoints, nf3.midpoints);
  EXPECT_EQ(back.name(), "nf3");
  EXPECT_THROW(codebook_from_levels(CodebookKind::NF, 4, nf3.levels), Error);  // wrong count
  std::vector<float> unsorted = nf3.levels;
  std::swap(unsorted[1], unsorted[2]);
  EXPECT_THROW(codebook_from_levels(CodebookKind::NF, 3, unsorted), Error);
  std::vector<float> dup = nf3.levels;
  dup[2] = dup[1];
  EXPECT_THROW(codebook_from_levels(CodebookKind::NF, 3, dup), Error);
}

}  // namespace
}  // namespace lords::quant
