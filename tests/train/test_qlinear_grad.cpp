// Gradients of the trainable quantized linears: the LoRDS linear (frozen codes, B and A train), the
// QAT fake-quantized linear (latent W with a straight-through estimator), and LoRA on a frozen
// block-wise NF4 base (QLoRA). For each:
//   ref<double> against central finite differences of the fp64 forward, on shapes off every tile
//   size (N = 37, K = 45, r = 3, M = 5); QAT's dW checked against the STE definition itself;
//   cpu (fp32) against ref<double> on the same inputs, with tiles small enough that several full
//   and partial tiles run in both directions.
// Activation grads start as NaN (they must be overwritten; sentinels catch writes outside them),
// parameter grads start from random values (they must be accumulated).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "lords/core/error.h"
#include "lords/train/fake_quant.h"
#include "lords/train/lora_linear.h"
#include "lords/train/qlinear_grad.h"
#include "ops/ops_test_util.h"
#include "qlinear_test_util.h"

namespace lords::train {
namespace {

using ops::QScaleKind;
using test::VecD;
using test::VecF;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// ref<double> vs central differences, relative to the largest gradient: the losses are linear in
// each parameter, so only rounding remains (~eps |loss| / h; measured <= 4.4e-12); 1e-9 still
// catches any wrong term, which is off by O(1).
constexpr double kFdTol = 1e-9;
// cpu fp32 vs ref<double>, relative to the largest element: each gradient is a sum of at most
// ~(M + r) K fp32 products (two chained GEMMs for dB, dA), whose fp32 accumulation errs by
// ~eps sqrt(terms) of the largest partial sums; measured <= 3.2e-7 on these shapes, 10x headroom.
constexpr double kCpuTol = 3e-6;

// acc - base: what an accumulating backward added.
VecD added(const VecD& acc, const VecD& base) {
  VecD d(acc.size());
  for (size_t i = 0; i < acc.size(); ++i) d[i] = acc[i] - base[i];
  return d;
}
template <class T>
VecD added(const std::vector<T>& acc, const VecF& base) {
  VecD d(acc.size());
  for (size_t i = 0; i < acc.size(); ++i) d[i] = static_cast<double>(acc[i]) - base[i];
  return d;
}

std::string tiles_name(const QLinearTiles& t) {
  return std::to_string(t.rows) + "x" + std::to_string(t.cols);
}

// ---- LoRDS linear ------------------------------------------------------------------------------

TEST(LordsLinearGrad, RefMatchesFiniteDifferences) {
  const int64_t M = 5, N = 37, K = 45, r = 3;
  test::QData d = test::make_qdata(QScaleKind::LowRank, N, K, r, 4, 11);
  VecD X = test::widen(test::normal_vec(M * K, 12)), dY = test::widen(test::normal_vec(M * N, 13));
  const VecD dB0 = test::widen(test::normal_vec(N * r, 14)),
             dA0 = test::widen(test::normal_vec(r * K, 15));
  VecD dX(static_cast<size_t>(M * K), kNaN), dB = dB0, dA = dA0;
  ref::lords_linear_bwd<double>({dX.data(), dB.data(), dA.data()}, dY.data(), X.data(), M, d.u());

  auto loss = [&] {  // sum(dY (.) Y): its gradient w.r.t. Y is dY
    VecD Y(static_cast<size_t>(M * N));
    ref::qlinear_fwd<double>(Y.data(), X.data(), M, d.u());
    return test::dot(Y, dY);
  };
  EXPECT_LE(test::max_rel_err(dX.data(), test::fd_grad(X, loss)), kFdTol) << "dX";
  EXPECT_LE(test::max_rel_err(added(dB, dB0).data(), test::fd_grad(d.B_d, loss)), kFdTol) << "dB";
  EXPECT_LE(test::max_rel_err(added(dA, dA0).data(), test::fd_grad(d.A_d, loss)), kFdTol) << "dA";
}

struct Case {
  int64_t M, N, K, r;
  int bits;
  QLinearTiles tiles;
};

std::string case_name(const Case& c) {
  return "M" + std::to_string(c.M) + "_N" + std::to_string(c.N) + "_K" + std::to_string(c.K) +
         "_r" + std::to_string(c.r) + "_b" + std::to_string(c.bits) + "_t" + tiles_name(c.tiles);
}

class LordsLinearCpu : public ::testing::TestWithParam<Case> {};

TEST_P(LordsLinearCpu, MatchesRef) {
  const Case c = GetParam();
  const auto seed = static_cast<uint32_t>(c.M * 1000 + c.N + c.K + c.bits);
  const test::QData d = test::make_qdata(QScaleKind::LowRank, c.N, c.K, c.r, c.bits, seed);
  const VecF X = test::normal_vec(c.M * c.K, seed + 10),
             dY = test::normal_vec(c.M * c.N, seed + 11);
  const VecF dB0 = test::normal_vec(c.N * c.r, seed + 12),
             dA0 = test::normal_vec(c.r * c.K, seed + 13);

  VecD want_dX(static_cast<size_t>(c.M * c.K)), want_dB(dB0.begin(), dB0.end()),
      want_dA(dA0.begin(), dA0.end());
  const VecD Xd = test::widen(X), dYd = test::widen(dY);
  ref::lords_linear_bwd<double>(
      {want_dX.data(), want_dB.data(), want_dA.data()}, dYd.data(), Xd.data(), c.M, d.u());

  lords_linear_check(d.q(), c.M, c.tiles);
  ::lords::test::Guarded dX(static_cast<size_t>(c.M * c.K));
  VecF dB = dB0, dA = dA0;
  cpu::lords_linear_bwd(
      {dX.data(), dB.data(), dA.data()}, dY.data(), X.data(), c.M, d.q(), c.tiles);
  dX.expect_guards_intact();
  size_t at = 0;
  EXPECT_LE(test::max_rel_err(dX.data(), want_dX, &at), kCpuTol) << "dX worst at " << at;
  EXPECT_LE(test::max_rel_err(dB.data(), want_dB, &at), kCpuTol) << "dB worst at " << at;
  EXPECT_LE(test::max_rel_err(dA.data(), want_dA, &at), kCpuTol) << "dA worst at " << at;
  // What was added, on its own scale (dB0, dA0 are O(1) and could hide a small wrong term).
  EXPECT_LE(test::max_rel_err(added(dB, dB0).data(), added(want_dB, test::widen(dB0))), kCpuTol);
  EXPECT_LE(test::max_rel_err(added(dA, dA0).data(), added(want_dA, test::widen(dA0))), kCpuTol);
}

// 300 = 4 x 64 + 44 (rows and columns of 64-tiles), 300 = 2 x 128 + 44 and 200 = 128 + 72 (default
// tiles), 77 = 4 x 16 + 13, tiles smaller than a vector of codes, M = 1, bits 2/3/4.
INSTANTIATE_TEST_SUITE_P(Train,
                         LordsLinearCpu,
                         ::testing::Values(Case{7, 300, 300, 4, 4, {64, 64}},
                                           Case{33, 300, 200, 16, 3, {}},
                                           Case{1, 130, 77, 1, 2, {64, 16}},
                                           Case{5, 37, 45, 3, 4, {8, 8}},
                                           Case{17, 300, 300, 8, 2, {}}),
                         [](const ::testing::TestParamInfo<Case>& p) {
                           return case_name(p.param);
                         });

TEST(LordsLinearGrad, CpuIsDeterministic) {
  const int64_t M = 9, N = 300, K = 300, r = 4;
  const test::QData d = test::make_qdata(QScaleKind::LowRank, N, K, r, 4, 3);
  const VecF X = test::normal_vec(M * K, 4), dY = test::normal_vec(M * N, 5);
  VecF out[2][3];
  for (auto& o : out) {
    o[0].assign(static_cast<size_t>(M * K), 0.0f);
    o[1].assign(static_cast<size_t>(N * r), 0.0f);
    o[2].assign(static_cast<size_t>(r * K), 0.0f);
    cpu::lords_linear_bwd(
        {o[0].data(), o[1].data(), o[2].data()}, dY.data(), X.data(), M, d.q(), {64, 64});
  }
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(0, std::memcmp(out[0][i].data(), out[1][i].data(), out[0][i].size() * sizeof(float)))
        << i;
}

// The frozen-base input gradient on both scale kinds: G = 20 is not a multiple of 8 and 300 % G,
// 300 % 64 != 0.
TEST(QLinearDx, CpuMatchesRef) {
  const int64_t M = 9, N = 300, K = 300;
  for (const auto& [kind, rg] : {std::pair{QScaleKind::LowRank, int64_t{5}},
                                 std::pair{QScaleKind::Block, int64_t{64}},
                                 std::pair{QScaleKind::Block, int64_t{20}}}) {
    const test::QData d = test::make_qdata(kind, N, K, rg, 4, static_cast<uint32_t>(rg));
    const VecF dY = test::normal_vec(M * N, 7);
    VecD want(static_cast<size_t>(M * K));
    const VecD dYd = test::widen(dY);
    ref::qlinear_dx<double>(want.data(), dYd.data(), M, d.u());
    ::lords::test::Guarded dX(static_cast<size_t>(M * K));
    cpu::qlinear_dx(dX.data(), dY.data(), M, d.q(), {64, 64});
    dX.expect_guards_intact();
    EXPECT_LE(test::max_rel_err(dX.data(), want), kCpuTol) << "rg " << rg;
  }
}

TEST(QLinearChecks, RejectInconsistentInputs) {
  const test::QData lr = test::make_qdata(QScaleKind::LowRank, 4, 16, 2, 4, 1);
  const test::QData bl = test::make_qdata(QScaleKind::Block, 4, 16, 8, 4, 1);
  EXPECT_NO_THROW(lords_linear_check(lr.q(), 1, {}));
  EXPECT_THROW(lords_linear_check(bl.q(), 1, {}), Error);        // Block: nothing to train
  EXPECT_THROW(lords_linear_check(lr.q(), 0, {}), Error);        // no tokens
  EXPECT_THROW(lords_linear_check(lr.q(), 1, {64, 12}), Error);  // cols not a multiple of 8
  EXPECT_THROW(lords_linear_check(lr.q(), 1, {0, 64}), Error);

  VecF W(64, 0.1f);
  FakeQuantWeight<float> fq{4, 16, 2, 4, W.data(), lr.B.data(), lr.A.data(), lr.levels.data()};
  EXPECT_NO_THROW(fake_quant_check(fq, 1, {}));
  VecF unordered = lr.levels;
  std::swap(unordered[3], unordered[4]);
  fq.levels = unordered.data();
  EXPECT_THROW(fake_quant_check(fq, 1, {}), Error);
  fq.levels = lr.levels.data();
  fq.W = nullptr;
  EXPECT_THROW(fake_quant_check(fq, 1, {}), Error);

  VecF A(32), B(8);
  EXPECT_NO_THROW(lora_linear_check(bl.q(), {2, 4.0f, A.data(), B.data()}, 1, {}));
  EXPECT_THROW(lora_linear_check(bl.q(), {0, 4.0f, A.data(), B.data()}, 1, {}), Error);
  EXPECT_THROW(lora_linear_check(bl.q(), {2, 4.0f, nullptr, B.data()}, 1, {}), Error);
}

// ---- QAT fake quantization ---------------------------------------------------------------------

// A latent weight W = u S with S = B A > 0 (positive B, A: the absmax-like statistics LoRDS starts
// from) and u ~ U(-1.4, 1.4), so ~30% of W / S lies outside the NF range [-1, 1]. u keeps 1e-3 away
// from every NF midpoint and from +-1, so fp32 (cpu) and fp64 (ref) agree on every code and every
// STE mask bit. Row 0 has B = 0, hence S = 0: the tiny-scale path (code of the level nearest 0).
struct QatData {
  int64_t N = 0, K = 0, r = 0;
  int bits = 4;
  VecF W, B, A, levels;
  VecD W_d, B_d, A_d, levels_d;
  FakeQuantWeight<float> f() const {
    return {N, K, r, bits, W.data(), B.data(), A.data(), levels.data()};
  }
  FakeQuantWeight<double> d() const {
    return {N, K, r, bits, W_d.data(), B_d.data(), A_d.data(), levels_d.data()};
  }
};

QatData make_qat(int64_t N, int64_t K, int64_t r, uint32_t seed) {
  QatData q;
  q.N = N;
  q.K = K;
  q.r = r;
  q.levels = quant::make_codebook(quant::CodebookKind::NF, q.bits).levels;
  q.B = test::positive_vec(N * r, seed, 0.5f, 0.5f);
  q.A = test::positive_vec(
      r * K, seed + 1, 0.5f / static_cast<float>(r), 0.5f / static_cast<float>(r));
  std::fill(q.B.begin(), q.B.begin() + r, 0.0f);
  const VecF u = test::positive_vec(N * K, seed + 2, -1.4f, 2.8f);
  q.W.resize(static_cast<size_t>(N * K));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      double x = u[n * K + k], s = 0.0;
      for (int64_t j = 0; j < r; ++j) s += static_cast<double>(q.B[n * r + j]) * q.A[j * K + k];
      for (size_t i = 0; i + 1 < q.levels.size(); ++i) {
        const double mid = 0.5 * (q.levels[i] + q.levels[i + 1]);
        if (std::fabs(x - mid) < 1e-3) x = mid + 2e-3;
      }
      if (std::fabs(std::fabs(x) - 1.0) < 1e-3) x *= 1.003;
      q.W[n * K + k] = static_cast<float>(n == 0 ? x : x * s);
    }
  q.W_d = test::widen(q.W);
  q.B_d = test::widen(q.B);
  q.A_d = test::widen(q.A);
  q.levels_d = test::widen(q.levels);
  return q;
}

TEST(FakeQuant, RefCodesFollowNearestLevel) {
  const QatData q = make_qat(37, 45, 3, 21);
  VecD W_hat(static_cast<size_t>(q.N * q.K));
  std::vector<uint8_t> codes(W_hat.size());
  ref::fake_quant_weight<double>(W_hat.data(), codes.data(), q.d());
  const uint8_t zero = quant::make_codebook(quant::CodebookKind::NF, 4).nearest(0.0f);
  for (int64_t n = 0; n < q.N; ++n)
    for (int64_t k = 0; k < q.K; ++k) {
      const size_t i = static_cast<size_t>(n * q.K + k);
      double s = 0.0;
      for (int64_t j = 0; j < q.r; ++j) s += q.B_d[n * q.r + j] * q.A_d[j * q.K + k];
      if (n == 0) {  // S = 0
        ASSERT_EQ(codes[i], zero);
        ASSERT_EQ(W_hat[i], 0.0);
        continue;
      }
      size_t best = 0;  // brute force: argmin |x - level|
      for (size_t l = 1; l < q.levels_d.size(); ++l)
        if (std::fabs(q.W_d[i] / s - q.levels_d[l]) < std::fabs(q.W_d[i] / s - q.levels_d[best]))
          best = l;
      ASSERT_EQ(codes[i], best) << "(n, k) = (" << n << ", " << k << ")";
      ASSERT_NEAR(W_hat[i], q.levels_d[best] * s, 1e-15);
    }
}

// The STE gradient by definition, and dX, dB, dA by finite differences with the codes held fixed.
TEST(FakeQuant, RefGradients) {
  const int64_t M = 5;
  QatData q = make_qat(37, 45, 3, 22);
  const int64_t N = q.N, K = q.K, r = q.r;
  VecD X = test::widen(test::normal_vec(M * K, 23)), dY = test::widen(test::normal_vec(M * N, 24));
  VecD Y(static_cast<size_t>(M * N));
  std::vector<uint8_t> codes(static_cast<size_t>(N * K));
  ref::fake_quant_linear_fwd<double>(Y.data(), codes.data(), X.data(), M, q.d());

  // The same codes through the LoRDS forward: what "codes held fixed" differentiates.
  auto frozen = [&] {
    ref::UnpackedWeight<double> u;
    u.N = N;
    u.K = K;
    u.bits = q.bits;
    u.codes = codes.data();
    u.levels = q.levels_d.data();
    u.r = r;
    u.B = q.B_d.data();
    u.A = q.A_d.data();
    return u;
  };
  VecD Y2(Y.size());
  ref::qlinear_fwd<double>(Y2.data(), X.data(), M, frozen());
  EXPECT_EQ(Y, Y2);

  const VecD dW0 = test::widen(test::normal_vec(N * K, 25)),
             dB0 = test::widen(test::normal_vec(N * r, 26));
  const VecD dA0 = test::widen(test::normal_vec(r * K, 27));
  int64_t outside = 0;
  for (SteRange ste : {SteRange::ZeroOutside, SteRange::PassAll}) {
    VecD dX(static_cast<size_t>(M * K), kNaN), dW = dW0, dB = dB0, dA = dA0;
    ref::fake_quant_linear_bwd<double>({dX.data(), dW.data(), dB.data(), dA.data()},
                                       dY.data(),
                                       X.data(),
                                       codes.data(),
                                       M,
                                       q.d(),
                                       {ste, {}});
    // dW = dW0 + mask (.) dY^T X, mask = 1 where levels[0] <= W / S <= levels[15] (or PassAll).
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        double s = 0.0, g = 0.0;
        for (int64_t j = 0; j < r; ++j) s += q.B_d[n * r + j] * q.A_d[j * K + k];
        for (int64_t m = 0; m < M; ++m) g += dY[m * N + n] * X[m * K + k];
        const double x = q.W_d[n * K + k] / s;
        const bool inside = s != 0.0 && x >= q.levels_d.front() && x <= q.levels_d.back();
        if (ste == SteRange::ZeroOutside) outside += inside ? 0 : 1;
        const double want = dW0[n * K + k] + (ste == SteRange::PassAll || inside ? g : 0.0);
        ASSERT_NEAR(dW[n * K + k], want, 1e-12) << "(n, k) = (" << n << ", " << k << ")";
      }
    auto loss = [&] {
      VecD Yf(static_cast<size_t>(M * N));
      ref::qlinear_fwd<double>(Yf.data(), X.data(), M, frozen());
      return test::dot(Yf, dY);
    };
    EXPECT_LE(test::max_rel_err(dX.data(), test::fd_grad(X, loss)), kFdTol) << "dX";
    EXPECT_LE(test::max_rel_err(added(dB, dB0).data(), test::fd_grad(q.B_d, loss)), kFdTol) << "dB";
    EXPECT_LE(test::max_rel_err(added(dA, dA0).data(), test::fd_grad(q.A_d, loss)), kFdTol) << "dA";
  }
  EXPECT_GT(outside, N * K / 5) << "the data were meant to exercise the STE mask";
}

TEST(FakeQuant, CpuMatchesRef) {
  for (const auto& [M, N, K, r, tiles] :
       {std::tuple{int64_t{7}, int64_t{300}, int64_t{300}, int64_t{8}, QLinearTiles{64, 64}},
        std::tuple{int64_t{20}, int64_t{200}, int64_t{520}, int64_t{16}, QLinearTiles{}}}) {
    SCOPED_TRACE("N " + std::to_string(N) + " K " + std::to_string(K) + " tiles " +
                 tiles_name(tiles));
    const QatData q = make_qat(N, K, r, static_cast<uint32_t>(N + K));
    const VecF X = test::normal_vec(M * K, 31), dY = test::normal_vec(M * N, 32);
    const VecD Xd = test::widen(X), dYd = test::widen(dY);
    VecD want_Y(static_cast<size_t>(M * N));
    std::vector<uint8_t> want_codes(static_cast<size_t>(N * K)), codes(want_codes.size());
    ref::fake_quant_linear_fwd<double>(want_Y.data(), want_codes.data(), Xd.data(), M, q.d());
    fake_quant_check(q.f(), M, {SteRange::ZeroOutside, tiles});
    ::lords::test::Guarded Y(static_cast<size_t>(M * N));
    cpu::fake_quant_linear_fwd(
        Y.data(), codes.data(), X.data(), M, q.f(), {SteRange::ZeroOutside, tiles});
    Y.expect_guards_intact();
    ASSERT_EQ(codes, want_codes);
    EXPECT_LE(test::max_rel_err(Y.data(), want_Y), kCpuTol) << "Y";

    const VecF dW0 = test::normal_vec(N * K, 33), dB0 = test::normal_vec(N * r, 34),
               dA0 = test::normal_vec(r * K, 35);
    for (SteRange ste : {SteRange::ZeroOutside, SteRange::PassAll}) {
      VecD w_dX(static_cast<size_t>(M * K)), w_dW(dW0.begin(), dW0.end()),
          w_dB(dB0.begin(), dB0.end());
      VecD w_dA(dA0.begin(), dA0.end());
      ref::fake_quant_linear_bwd<double>({w_dX.data(), w_dW.data(), w_dB.data(), w_dA.data()},
                                         dYd.data(),
                                         Xd.data(),
                                         codes.data(),
                                         M,
                                         q.d(),
                                         {ste, {}});
      ::lords::test::Guarded dX(static_cast<size_t>(M * K));
      VecF dW = dW0, dB = dB0, dA = dA0;
      cpu::fake_quant_linear_bwd({dX.data(), dW.data(), dB.data(), dA.data()},
                                 dY.data(),
                                 X.data(),
                                 codes.data(),
                                 M,
                                 q.f(),
                                 {ste, tiles});
      dX.expect_guards_intact();
      EXPECT_LE(test::max_rel_err(dX.data(), w_dX), kCpuTol) << "dX";
      EXPECT_LE(test::max_rel_err(added(dW, dW0).data(), added(w_dW, test::widen(dW0))), kCpuTol)
          << "dW";
      EXPECT_LE(test::max_rel_err(added(dB, dB0).data(), added(w_dB, test::widen(dB0))), kCpuTol)
          << "dB";
      EXPECT_LE(test::max_rel_err(added(dA, dA0).data(), added(w_dA, test::widen(dA0))), kCpuTol)
          << "dA";
    }
  }
}

// ---- LoRA on a block-wise NF4 base (QLoRA) -----------------------------------------------------

TEST(LoraLinear, RefMatchesFiniteDifferences) {
  const int64_t M = 5, N = 37, K = 45, G = 16, r = 3;  // 45 = 2 x 16 + 13: a short last block
  const test::QData base = test::make_qdata(QScaleKind::Block, N, K, G, 4, 41);
  VecD X = test::widen(test::normal_vec(M * K, 42)), dY = test::widen(test::normal_vec(M * N, 43));
  VecD A = test::widen(test::normal_vec(r * K, 44)), B = test::widen(test::normal_vec(N * r, 45));
  const double alpha = 8.0;  // scaling 8 / 3
  auto lora = [&] { return LoraAdapter<double>{r, alpha, A.data(), B.data()}; };
  VecD Y(static_cast<size_t>(M * N)), XA(static_cast<size_t>(M * r));
  ref::lora_linear_fwd<double>(Y.data(), XA.data(), X.data(), M, base.u(), lora());

  const VecD dA0 = test::widen(test::normal_vec(r * K, 46)),
             dB0 = test::widen(test::normal_vec(N * r, 47));
  VecD dX(static_cast<size_t>(M * K), kNaN), dA = dA0, dB = dB0;
  ref::lora_linear_bwd<double>(
      {dX.data(), dA.data(), dB.data()}, dY.data(), X.data(), XA.data(), M, base.u(), lora());
  auto loss = [&] {
    VecD Yl(static_cast<size_t>(M * N)), XAl(static_cast<size_t>(M * r));
    ref::lora_linear_fwd<double>(Yl.data(), XAl.data(), X.data(), M, base.u(), lora());
    return test::dot(Yl, dY);
  };
  EXPECT_LE(test::max_rel_err(dX.data(), test::fd_grad(X, loss)), kFdTol) << "dX";
  EXPECT_LE(test::max_rel_err(added(dA, dA0).data(), test::fd_grad(A, loss)), kFdTol) << "dA";
  EXPECT_LE(test::max_rel_err(added(dB, dB0).data(), test::fd_grad(B, loss)), kFdTol) << "dB";
}

TEST(LoraLinear, CpuMatchesRef) {
  const int64_t M = 9, N = 300, K = 300, r = 8;
  // NF4 blocks of 64 (300 = 4 x 64 + 44) as in QLoRA, and a LoRDS base (LoRA on top of LoRDS).
  for (const auto& [kind, rg] :
       {std::pair{QScaleKind::Block, int64_t{64}}, std::pair{QScaleKind::LowRank, int64_t{4}}}) {
    SCOPED_TRACE(kind == QScaleKind::Block ? "block base" : "lowrank base");
    const test::QData base = test::make_qdata(kind, N, K, rg, 4, 51);
    const VecF X = test::normal_vec(M * K, 52), dY = test::normal_vec(M * N, 53);
    const VecF A = test::normal_vec(r * K, 54, 0.05f), B = test::normal_vec(N * r, 55, 0.05f);
    const VecD Xd = test::widen(X), dYd = test::widen(dY), Ad = test::widen(A), Bd = test::widen(B);
    const LoraAdapter<float> lora{r, 16.0f, A.data(), B.data()};
    const LoraAdapter<double> lora_d{r, 16.0, Ad.data(), Bd.data()};
    lora_linear_check(base.q(), lora, M, {64, 64});

    VecD want_Y(static_cast<size_t>(M * N)), want_XA(static_cast<size_t>(M * r));
    ref::lora_linear_fwd<double>(want_Y.data(), want_XA.data(), Xd.data(), M, base.u(), lora_d);
    ::lords::test::Guarded Y(static_cast<size_t>(M * N)), XA(static_cast<size_t>(M * r));
    cpu::lora_linear_fwd(Y.data(), XA.data(), X.data(), M, base.q(), lora);
    Y.expect_guards_intact();
    XA.expect_guards_intact();
    EXPECT_LE(test::max_rel_err(Y.data(), want_Y), kCpuTol) << "Y";
    EXPECT_LE(test::max_rel_err(XA.data(), want_XA), kCpuTol) << "XA";

    const VecF dA0 = test::normal_vec(r * K, 56), dB0 = test::normal_vec(N * r, 57);
    VecD w_dX(static_cast<size_t>(M * K)), w_dA(dA0.begin(), dA0.end()),
        w_dB(dB0.begin(), dB0.end());
    ref::lora_linear_bwd<double>({w_dX.data(), w_dA.data(), w_dB.data()},
                                 dYd.data(),
                                 Xd.data(),
                                 want_XA.data(),
                                 M,
                                 base.u(),
                                 lora_d);
    ::lords::test::Guarded dX(static_cast<size_t>(M * K));
    VecF dA = dA0, dB = dB0;
    cpu::lora_linear_bwd({dX.data(), dA.data(), dB.data()},
                         dY.data(),
                         X.data(),
                         XA.data(),
                         M,
                         base.q(),
                         lora,
                         {64, 64});
    dX.expect_guards_intact();
    EXPECT_LE(test::max_rel_err(dX.data(), w_dX), kCpuTol) << "dX";
    EXPECT_LE(test::max_rel_err(added(dA, dA0).data(), added(w_dA, test::widen(dA0))), kCpuTol)
        << "dA";
    EXPECT_LE(test::max_rel_err(added(dB, dB0).data(), added(w_dB, test::widen(dB0))), kCpuTol)
        << "dB";
  }
}

// peft's init: A ~ U(-1/sqrt(K), 1/sqrt(K)) (kaiming_uniform, a = sqrt(5)), B = 0; seeded.
TEST(LoraLinear, InitMatchesPeft) {
  const int64_t N = 40, K = 256, r = 16;
  VecF A(static_cast<size_t>(r * K)), B(static_cast<size_t>(N * r), 1.0f), A2(A.size()),
      A3(A.size());
  lora_init(A.data(), B.data(), N, K, r, 7);
  const double bound = 1.0 / std::sqrt(static_cast<double>(K));
  double mean = 0.0, sq = 0.0;
  for (float a : A) {
    ASSERT_GE(a, -bound);
    ASSERT_LT(a, bound);
    mean += a;
    sq += static_cast<double>(a) * a;
  }
  mean /= static_cast<double>(A.size());
  sq /= static_cast<double>(A.size());
  // 4096 samples of U(-b, b): sd of the mean b / sqrt(3 * 4096) ~ 0.009 b; of the variance ~ 0.015
  // b^2 / 3.
  EXPECT_NEAR(mean, 0.0, 0.05 * bound);
  EXPECT_NEAR(sq, bound * bound / 3, 0.1 * bound * bound / 3);
  for (float b : B) ASSERT_EQ(b, 0.0f);
  VecF B2(B.size());
  lora_init(A2.data(), B2.data(), N, K, r, 7);
  lora_init(A3.data(), B2.data(), N, K, r, 8);
  EXPECT_EQ(A, A2) << "same seed, same adapter";
  EXPECT_NE(A, A3) << "another seed, another adapter";
}

}  // namespace
}  // namespace lords::train
