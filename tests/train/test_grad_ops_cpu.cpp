// CPU fp32 backward ops (train/grad_*.h) against ref<double> on the same fp32 inputs, at shapes large
// enough to take the OpenMP/BLAS paths, with odd sizes for the tails. Tolerances are for fp32
// arithmetic against an fp64 oracle, each with its reason. Also: the gradient contract (NaN-prefilled
// activation grads, noise-prefilled parameter grads), attention independent of the thread count,
// in-place forms and empty shapes.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "grad_test_util.h"
#include "lords/ops/rope.h"
#include "lords/train/grad_attention.h"
#include "lords/train/grad_cross_entropy.h"
#include "lords/train/grad_embedding.h"
#include "lords/train/grad_linear.h"
#include "lords/train/grad_rmsnorm.h"
#include "lords/train/grad_rope.h"
#include "lords/train/grad_silu_mul.h"

using namespace lords;
using test::added;
using test::cast;
using test::expect_close;
using test::nans;
using test::randn;

namespace {

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// Elementwise results (a few fp32 roundings, no long sums).
constexpr double kElemRtol = 2e-6;
// Outputs that are fp32 sums, or differences of sums, judged at the tensor's scale (max |ref|) because
// single elements may cancel to ~0: fp32 sums of <= 4k terms stay far below 1e-5 of it.
constexpr double kSumAtolRel = 1e-5;

// ---- embedding -------------------------------------------------------------------------------------

TEST(GradEmbeddingCpu, MatchesRef) {
  const int64_t M = 1000, V = 50, D = 300;  // ~20 repeats of every id
  std::mt19937 rng(61);
  std::vector<int32_t> tokens(sz(M));
  for (auto& t : tokens) t = static_cast<int32_t>(rng() % V);
  const auto dout = randn<float>(sz(M * D), 62), dt0 = randn<float>(sz(V * D), 63);
  auto dt = dt0;
  train::cpu::embedding_bwd(dt.data(), dout.data(), tokens.data(), M, V, D);
  auto ref = cast<double>(dt0);
  const auto dout_d = cast<double>(dout);
  train::ref::embedding_bwd(ref.data(), dout_d.data(), tokens.data(), M, V, D);
  expect_close(dt, ref, kElemRtol, 1e-6, "dtable");  // ~20 fp32 additions per element (measured 2e-7)
}

// ---- rmsnorm ---------------------------------------------------------------------------------------

class GradRmsnormCpu : public ::testing::TestWithParam<std::tuple<int64_t, int64_t>> {};

TEST_P(GradRmsnormCpu, MatchesRef) {
  const auto [M, D] = GetParam();
  const float eps = 1e-5f;
  auto x = randn<float>(sz(M * D), 71);
  for (int64_t i = 0; i < M * D; ++i) x[sz(i)] *= std::pow(10.0f, static_cast<float>(i / D % 5) - 2.0f);
  const auto w = randn<float>(sz(D), 72, 0.2, 1.0), dy = randn<float>(sz(M * D), 73);
  const auto dw0 = randn<float>(sz(D), 74);
  std::vector<float> y(sz(M * D)), rstd(sz(M));
  train::cpu::rmsnorm_fwd(y.data(), rstd.data(), x.data(), w.data(), M, D, eps);
  auto dx = nans<float>(sz(M * D));
  auto dw = dw0;
  train::cpu::rmsnorm_bwd(dx.data(), dw.data(), dy.data(), x.data(), w.data(), rstd.data(), M, D);

  const auto xd = cast<double>(x), wd = cast<double>(w), dyd = cast<double>(dy);
  std::vector<double> yr(sz(M * D)), rr(sz(M)), dxr(sz(M * D)), dwr(sz(D), 0.0);
  train::ref::rmsnorm_fwd(yr.data(), rr.data(), xd.data(), wd.data(), M, D, eps);
  train::ref::rmsnorm_bwd(dxr.data(), dwr.data(), dyd.data(), xd.data(), wd.data(), rr.data(), M, D);
  // rstd from an fp32 sum of D squares: relative error ~ eps32 sqrt(D) typical.
  expect_close(rstd, rr, 1e-5, 0, "rstd");
  expect_close(y, yr, 1e-5, 0, "y");
  // dx per row: rstd (w dy - xhat c), c an fp32 dot over D; rows differ in scale by 1e4, so the scale
  // term is taken per element (rtol) plus a small floor for the cancelling ones.
  expect_close(dx, dxr, 1e-5, 1e-6, "dx");
  expect_close(added(dw, dw0), dwr, 1e-5, 1e-6, "dw");  // fp64 column sums of fp32 products
}

INSTANTIATE_TEST_SUITE_P(Shapes, GradRmsnormCpu,
                         ::testing::Values(std::make_tuple(1, 7), std::make_tuple(17, 4099),
                                           std::make_tuple(64, 512), std::make_tuple(3, 300)));

// ---- rope ------------------------------------------------------------------------------------------

TEST(GradRopeCpu, MatchesRef) {
  const int64_t M = 33, H = 8, Dh = 128;
  std::mt19937 rng(81);
  std::vector<int64_t> pos(sz(M));
  for (auto& p : pos) p = static_cast<int64_t>(rng() % 8192);
  std::vector<float> inv_freq(sz(Dh / 2));
  ops::rope_inv_freq(inv_freq.data(), Dh, 500000.0, {.kind = ops::RopeScalingKind::Llama3, .factor = 8.0});
  const auto dy = randn<float>(sz(M * H * Dh), 82);
  auto dx = dy;
  train::cpu::rope_bwd(dx.data(), pos.data(), inv_freq.data(), M, H, Dh);
  auto ref = cast<double>(dy);
  train::ref::rope_bwd(ref.data(), pos.data(), inv_freq.data(), M, H, Dh);
  // 2 products and a sum, but cos/sin rounded to fp32: ~6e-8 of the scale measured on near-zero elements.
  expect_close(dx, ref, kElemRtol, 5e-7, "dx");
}

// ---- attention -------------------------------------------------------------------------------------

struct AttentionRun {
  std::vector<float> out, lse, dq, dk, dv;
};

// Forward then backward with cpu (all outputs NaN-prefilled, delta too).
AttentionRun run_cpu_attention(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                               const std::vector<float>& dout, const train::AttentionTrainShape& s) {
  const size_t nq = q.size(), nkv = k.size(), nr = sz(s.B * s.T * s.H);
  AttentionRun r{nans<float>(nq), nans<float>(nr), nans<float>(nq), nans<float>(nkv), nans<float>(nkv)};
  auto delta = nans<float>(nr);
  train::cpu::attention_fwd(r.out.data(), r.lse.data(), q.data(), k.data(), v.data(), s);
  train::cpu::attention_bwd(r.dq.data(), r.dk.data(), r.dv.data(), delta.data(), dout.data(),
                            {.q = q.data(), .k = k.data(), .v = v.data(), .out = r.out.data(), .lse = r.lse.data()},
                            s);
  return r;
}

class GradAttentionCpu : public ::testing::TestWithParam<train::AttentionTrainShape> {};

TEST_P(GradAttentionCpu, MatchesRef) {
  const train::AttentionTrainShape s = GetParam();
  const size_t nq = sz(s.B * s.T * s.H * s.Dh), nkv = sz(s.B * s.T * s.Hkv * s.Dh), nr = sz(s.B * s.T * s.H);
  // q with sd 2: scores of sd ~2, a softmax far from uniform, as trained models have.
  const auto q = randn<float>(nq, 91, 2.0), k = randn<float>(nkv, 92), v = randn<float>(nkv, 93);
  const auto dout = randn<float>(nq, 94);
  const AttentionRun c = run_cpu_attention(q, k, v, dout, s);

  const auto qd = cast<double>(q), kd = cast<double>(k), vd = cast<double>(v), doutd = cast<double>(dout);
  std::vector<double> out(nq), lse(nr), dq(nq), dk(nkv), dv(nkv), delta(nr);
  train::ref::attention_fwd(out.data(), lse.data(), qd.data(), kd.data(), vd.data(), s);
  train::ref::attention_bwd(dq.data(), dk.data(), dv.data(), delta.data(), doutd.data(),
                            {.q = qd.data(), .k = kd.data(), .v = vd.data(), .out = out.data(), .lse = lse.data()},
                            s);
  // out is a convex combination of value rows: error relative to max |v| ~ score rounding (Dh-term fp32
  // dots) amplified by exp; lse likewise in absolute terms.
  expect_close(c.out, out, 0, kSumAtolRel, "out");
  expect_close(c.lse, lse, 1e-6, 1e-6, "lse");
  // Gradients are sums over up to T keys (or T x group queries) of products of such terms.
  expect_close(c.dq, dq, 0, kSumAtolRel, "dq");
  expect_close(c.dk, dk, 0, kSumAtolRel, "dk");
  expect_close(c.dv, dv, 0, kSumAtolRel, "dv");
}

// {B, T, H, Hkv, Dh}: GQA 4:1 over several 16-row blocks with a tail, MHA with Dh 80, Llama's Dh 128
// over 9 blocks, MQA, one token.
INSTANTIATE_TEST_SUITE_P(Shapes, GradAttentionCpu,
                         ::testing::Values(train::AttentionTrainShape{2, 67, 8, 2, 64},
                                           train::AttentionTrainShape{1, 33, 4, 4, 80},
                                           train::AttentionTrainShape{1, 130, 4, 1, 128},
                                           train::AttentionTrainShape{3, 17, 6, 1, 32},
                                           train::AttentionTrainShape{1, 1, 2, 1, 8}),
                         test::attention_shape_name);

TEST(GradAttentionCpu, IndependentOfThreadCount) {
  const train::AttentionTrainShape s{.B = 2, .T = 40, .H = 4, .Hkv = 2, .Dh = 32};
  const size_t nq = sz(s.B * s.T * s.H * s.Dh), nkv = sz(s.B * s.T * s.Hkv * s.Dh);
  const auto q = randn<float>(nq, 95), k = randn<float>(nkv, 96), v = randn<float>(nkv, 97);
  const auto dout = randn<float>(nq, 98);
  const AttentionRun all = run_cpu_attention(q, k, v, dout, s);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const AttentionRun one = run_cpu_attention(q, k, v, dout, s);
  omp_set_num_threads(threads);
  EXPECT_EQ(all.out, one.out);
  EXPECT_EQ(all.lse, one.lse);
  EXPECT_EQ(all.dq, one.dq);
  EXPECT_EQ(all.dk, one.dk);
  EXPECT_EQ(all.dv, one.dv);
}

// ---- silu_mul --------------------------------------------------------------------------------------

TEST(GradSiluMulCpu, MatchesRefAndWorksInPlace) {
  const int64_t n = 100003;  // OpenMP path plus an odd tail
  auto gate = randn<float>(sz(n), 101, 4.0);
  gate[0] = 0.0f, gate[1] = 100.0f, gate[2] = -100.0f;  // exp(-g) overflows for the last one
  const auto up = randn<float>(sz(n), 102), dout = randn<float>(sz(n), 103);
  auto dgate = nans<float>(sz(n)), dup = nans<float>(sz(n));
  train::cpu::silu_mul_bwd(dgate.data(), dup.data(), dout.data(), gate.data(), up.data(), n);
  const auto gd = cast<double>(gate), ud = cast<double>(up), dd = cast<double>(dout);
  std::vector<double> rg(sz(n)), ru(sz(n));
  train::ref::silu_mul_bwd(rg.data(), ru.data(), dd.data(), gd.data(), ud.data(), n);
  // silu'(g) = s (1 + g (1 - s)): near g ~ -2.4 the bracket cancels, so judge at 1e-6 of the scale too.
  expect_close(dgate, rg, 1e-5, 1e-6, "dgate");
  expect_close(dup, ru, kElemRtol, 1e-7, "dup");
  auto g2 = gate, u2 = up;
  train::cpu::silu_mul_bwd(g2.data(), u2.data(), dout.data(), g2.data(), u2.data(), n);
  EXPECT_EQ(g2, dgate);
  EXPECT_EQ(u2, dup);
}

// ---- linear ----------------------------------------------------------------------------------------

class GradLinearCpu : public ::testing::TestWithParam<train::LinearShape> {};

TEST_P(GradLinearCpu, MatchesRef) {
  const train::LinearShape s = GetParam();
  const auto X = randn<float>(sz(s.M * s.K), 111), W = randn<float>(sz(s.N * s.K), 112);
  const auto dY = randn<float>(sz(s.M * s.N), 113);
  const auto dW0 = randn<float>(sz(s.N * s.K), 114), db0 = randn<float>(sz(s.N), 115);
  auto dX = nans<float>(sz(s.M * s.K));
  auto dW = dW0, db = db0;
  train::cpu::linear_bwd(dX.data(), dW.data(), db.data(), dY.data(), X.data(), W.data(), s);
  const auto Xd = cast<double>(X), Wd = cast<double>(W), dYd = cast<double>(dY);
  std::vector<double> rX(sz(s.M * s.K)), rW(sz(s.N * s.K), 0.0), rb(sz(s.N), 0.0);
  train::ref::linear_bwd(rX.data(), rW.data(), rb.data(), dYd.data(), Xd.data(), Wd.data(), s);
  // fp32 dot products over N (dX) or M (dW) terms; the accumulated ones also carry the prefill's rounding.
  expect_close(dX, rX, 0, kSumAtolRel, "dX");
  expect_close(added(dW, dW0), rW, 0, kSumAtolRel, "dW");
  expect_close(added(db, db0), rb, 0, kSumAtolRel, "dbias");
  // Frozen weight (LoRA base): only dX is asked for; the others stay untouched.
  auto dX2 = nans<float>(sz(s.M * s.K));
  train::cpu::linear_bwd(dX2.data(), nullptr, nullptr, dY.data(), X.data(), W.data(), s);
  EXPECT_EQ(dX2, dX);
}

// {M, N, K}: the tiled sgemm path with tails, one row, a tiny problem (single thread), no rows (dW and
// dbias must stay as they were; the prefill check covers it), no in-features.
INSTANTIATE_TEST_SUITE_P(Shapes, GradLinearCpu,
                         ::testing::Values(train::LinearShape{37, 300, 130}, train::LinearShape{1, 257, 64},
                                           train::LinearShape{5, 3, 1}, train::LinearShape{0, 70, 90},
                                           train::LinearShape{40, 70, 0}));

// ---- cross-entropy ---------------------------------------------------------------------------------

TEST(GradCrossEntropyCpu, MatchesRefAndWorksInPlace) {
  const int64_t M = 17, V = 5003;
  const auto logits = randn<float>(sz(M * V), 121, 3.0);
  std::mt19937 rng(122);
  std::vector<int32_t> targets(sz(M));
  std::vector<float> weights(sz(M));
  for (int64_t m = 0; m < M; ++m) {
    targets[sz(m)] = m % 5 == 1 ? -100 : static_cast<int32_t>(rng() % V);  // some prompt tokens
    weights[sz(m)] = m % 7 == 3 ? 0.0f : 1.0f + static_cast<float>(m % 3);
  }
  auto g = nans<float>(sz(M * V));
  const auto r = train::cpu::cross_entropy_fwd_bwd(g.data(), logits.data(), targets.data(), weights.data(), M, V);
  const auto ld = cast<double>(logits);
  std::vector<double> rg(sz(M * V));
  const auto rr = train::ref::cross_entropy_fwd_bwd(rg.data(), ld.data(), targets.data(), weights.data(), M, V);
  EXPECT_EQ(r.count, rr.count);
  EXPECT_NEAR(r.loss, rr.loss, 1e-6 * rr.loss);  // lse in fp32 exp, fp64 sums
  // softmax entries: fp32 exp of (l - max) and one scale (rtol); the target entry p - 1 may cancel.
  expect_close(g, rg, 1e-5, 1e-6, "dlogits");
  auto inplace = logits;
  const auto ri =
      train::cpu::cross_entropy_fwd_bwd(inplace.data(), inplace.data(), targets.data(), weights.data(), M, V);
  EXPECT_EQ(ri.loss, r.loss);
  EXPECT_EQ(inplace, g);
  const auto rl = train::cpu::cross_entropy_fwd_bwd(nullptr, logits.data(), targets.data(), weights.data(), M, V);
  EXPECT_EQ(rl.loss, r.loss);
}

}  // namespace
