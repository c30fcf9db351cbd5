// RoPE: the frequency table against HF's formulas (default, linear, llama3), ref against a direct
// complex-number rotation, cpu against ref for T in {1, 3, 17}, head dims 64/80/128 and positions up
// to 1e5, and the defining property that scores depend only on relative position.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <numbers>
#include <random>
#include <vector>

#include "lords/ops/rope.h"
#include "ops_test_util.h"

using namespace lords;
using test::random_vec;

namespace {

// inv_freq is fp64 math rounded once to fp32: within 1 ulp.
constexpr double kFreqRtol = 1.2e-7;
// ref rotates in fp64 and rounds once: 1 ulp of the larger component.
constexpr double kRefTol = 1.2e-7;
// cpu rounds cos/sin to fp32 and rotates in fp32: a few ulps of |x1| + |x2|.
constexpr double kCpuTol = 5e-7;

// HF _compute_llama3_parameters, transcribed with its own variable names (fp64 here).
std::vector<double> hf_llama3_inv_freq(int64_t dim, double base, double factor, double low_freq_factor,
                                       double high_freq_factor, double old_context_len) {
  std::vector<double> out;
  const double low_freq_wavelen = old_context_len / low_freq_factor;
  const double high_freq_wavelen = old_context_len / high_freq_factor;
  for (int64_t j = 0; j < dim; j += 2) {
    const double inv_freq = 1.0 / std::pow(base, static_cast<double>(j) / static_cast<double>(dim));
    const double wavelen = 2 * std::numbers::pi / inv_freq;
    double inv_freq_llama = wavelen > low_freq_wavelen ? inv_freq / factor : inv_freq;
    const double smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
    const double smoothed = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama;
    const bool is_medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    out.push_back(is_medium ? smoothed : inv_freq_llama);
  }
  return out;
}

TEST(RopeInvFreq, DefaultAndLinearMatchHf) {
  for (int64_t Dh : {64, 80, 128}) {
    std::vector<float> plain(static_cast<size_t>(Dh / 2)), lin(plain.size());
    ops::rope_inv_freq(plain.data(), Dh, 10000.0, {});
    ops::rope_inv_freq(lin.data(), Dh, 10000.0, {.kind = ops::RopeScalingKind::Linear, .factor = 4.0});
    for (int64_t i = 0; i < Dh / 2; ++i) {
      const double f = 1.0 / std::pow(10000.0, 2.0 * static_cast<double>(i) / static_cast<double>(Dh));
      EXPECT_NEAR(plain[i], f, kFreqRtol * f) << "Dh=" << Dh << " i=" << i;
      EXPECT_NEAR(lin[i], f / 4, kFreqRtol * f / 4) << "Dh=" << Dh << " i=" << i;
    }
  }
}

TEST(RopeInvFreq, Llama3MatchesHfIncludingTheBlendedBand) {
  // Llama-3.1-8B: theta 500000, factor 8, low 1, high 4, original context 8192, Dh 128.
  const ops::RopeScaling s{.kind = ops::RopeScalingKind::Llama3, .factor = 8.0, .low_freq_factor = 1.0,
                           .high_freq_factor = 4.0, .original_max_position_embeddings = 8192};
  const int64_t Dh = 128;
  std::vector<float> got(Dh / 2);
  ops::rope_inv_freq(got.data(), Dh, 500000.0, s);
  const std::vector<double> want = hf_llama3_inv_freq(Dh, 500000.0, 8.0, 1.0, 4.0, 8192.0);
  int kept = 0, divided = 0, blended = 0;
  for (int64_t i = 0; i < Dh / 2; ++i) {
    EXPECT_NEAR(got[i], want[i], kFreqRtol * want[i]) << "i=" << i;
    const double plain = 1.0 / std::pow(500000.0, 2.0 * static_cast<double>(i) / Dh);
    if (std::abs(want[i] - plain) < 1e-12 * plain) ++kept;
    else if (std::abs(want[i] - plain / 8) < 1e-12 * plain) ++divided;
    else ++blended;
  }
  // Every regime is exercised (high frequencies kept, low ones divided, a band blended between).
  EXPECT_GT(kept, 0);
  EXPECT_GT(divided, 0);
  EXPECT_GT(blended, 0);
  EXPECT_EQ(got[0], 1.0f);  // the highest frequency is untouched
}

struct Case {
  int64_t T, H, Dh;
};

class RopeTest : public ::testing::TestWithParam<Case> {};

TEST_P(RopeTest, RefMatchesComplexRotationAndCpuMatchesRef) {
  const Case c = GetParam();
  const ops::RopeScaling llama3{.kind = ops::RopeScalingKind::Llama3, .factor = 8.0, .low_freq_factor = 1.0,
                                .high_freq_factor = 4.0, .original_max_position_embeddings = 64};
  std::vector<float> inv_freq(static_cast<size_t>(c.Dh / 2));
  ops::rope_inv_freq(inv_freq.data(), c.Dh, 10000.0, llama3);
  std::mt19937 rng(static_cast<uint32_t>(c.T * 100 + c.Dh));
  std::vector<int64_t> pos(static_cast<size_t>(c.T));
  for (int64_t t = 0; t < c.T; ++t) pos[t] = t == 0 ? 0 : std::uniform_int_distribution<int64_t>(1, 100000)(rng);
  const auto x = random_vec(static_cast<size_t>(c.T * c.H * c.Dh), 11);
  std::vector<float> ref = x, cpu = x;
  ops::ref::rope(ref.data(), pos.data(), inv_freq.data(), c.T, c.H, c.Dh);
  ops::cpu::rope(cpu.data(), pos.data(), inv_freq.data(), c.T, c.H, c.Dh);
  const int64_t half = c.Dh / 2;
  for (int64_t t = 0; t < c.T; ++t)
    for (int64_t h = 0; h < c.H; ++h)
      for (int64_t i = 0; i < half; ++i) {
        const int64_t base = (t * c.H + h) * c.Dh;
        // (x1 + i x2) e^{i a}: the rotate-half pairs are (i, i + Dh/2).
        const std::complex<double> z = std::complex<double>(x[base + i], x[base + i + half]) *
                                       std::polar(1.0, static_cast<double>(pos[t]) * inv_freq[i]);
        const double mag = std::abs(x[base + i]) + std::abs(x[base + i + half]);
        ASSERT_NEAR(ref[base + i], z.real(), kRefTol * mag) << t << "," << h << "," << i;
        ASSERT_NEAR(ref[base + i + half], z.imag(), kRefTol * mag) << t << "," << h << "," << i;
        ASSERT_NEAR(cpu[base + i], ref[base + i], kCpuTol * mag) << t << "," << h << "," << i;
        ASSERT_NEAR(cpu[base + i + half], ref[base + i + half], kCpuTol * mag) << t << "," << h << "," << i;
      }
  // Position 0 is the identity on both backends, bit for bit.
  for (int64_t j = 0; j < c.H * c.Dh; ++j) {
    ASSERT_EQ(ref[j], x[j]);
    ASSERT_EQ(cpu[j], x[j]);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, RopeTest,
                         ::testing::Values(Case{1, 1, 64}, Case{3, 3, 80}, Case{17, 9, 64}, Case{17, 4, 80},
                                           Case{3, 32, 128}, Case{1, 2, 2}));

TEST(Rope, ScoresDependOnlyOnRelativePosition) {
  const int64_t Dh = 80;
  std::vector<float> inv_freq(Dh / 2);
  ops::rope_inv_freq(inv_freq.data(), Dh, 10000.0, {});
  const auto q = random_vec(Dh, 12), k = random_vec(Dh, 13);
  auto score = [&](int64_t m, int64_t n) {
    std::vector<float> qr = q, kr = k;
    ops::ref::rope(qr.data(), &m, inv_freq.data(), 1, 1, Dh);
    ops::ref::rope(kr.data(), &n, inv_freq.data(), 1, 1, Dh);
    double s = 0;
    for (int64_t d = 0; d < Dh; ++d) s += double(qr[d]) * kr[d];
    return s;
  };
  for (int64_t shift : {1, 17, 1000}) {
    EXPECT_NEAR(score(7, 3), score(7 + shift, 3 + shift), 1e-5) << shift;
    EXPECT_NEAR(score(3, 7), score(3 + shift, 7 + shift), 1e-5) << shift;
  }
}

}  // namespace
