// SwiGLU gate: both backends against silu(g) * up computed in fp64, including saturating inputs
// (exp overflow must give 0, not NaN), in place, lengths off the vector width.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "lords/ops/silu_mul.h"

using namespace lords;

namespace {

// fp32 exp, one division and two products: a few ulps of the fp64 value.
constexpr double kRtol = 1e-6;

TEST(SiluMul, BothBackendsMatchFp64Formula) {
  for (int64_t n : {1, 3, 17, 1000, 70001}) {
    std::mt19937 rng(static_cast<uint32_t>(n));
    std::normal_distribution<float> normal(0.0f, 4.0f);
    std::vector<float> gate(static_cast<size_t>(n)), up(gate.size());
    for (float& x : gate) x = normal(rng);
    for (float& x : up) x = normal(rng);
    if (n > 3) gate[0] = -1000.0f, gate[1] = 1000.0f, gate[2] = 0.0f, gate[3] = -88.0f;
    for (auto fn : {&ops::ref::silu_mul, &ops::cpu::silu_mul}) {
      std::vector<float> out(gate.size());
      fn(out.data(), gate.data(), up.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const double g = gate[i], exact = g / (1.0 + std::exp(-g)) * up[i];
        ASSERT_TRUE(std::isfinite(out[i])) << "n=" << n << " i=" << i;
        ASSERT_NEAR(out[i], exact, kRtol * std::abs(exact) + 1e-37) << "n=" << n << " i=" << i;
      }
    }
  }
}

TEST(SiluMul, InPlaceOverGate) {
  std::vector<float> gate = {-2, -1, 0, 1, 2, 3, 4, 5, 6}, up(9, 2.0f);
  for (auto fn : {&ops::ref::silu_mul, &ops::cpu::silu_mul}) {
    std::vector<float> out(9), g = gate;
    fn(out.data(), gate.data(), up.data(), 9);
    fn(g.data(), g.data(), up.data(), 9);
    EXPECT_EQ(out, g);
  }
}

}  // namespace
