// Reference backward ops (train/grad_*.h): ref<double> backward against central finite differences of
// ref<double> forward, through the scalar L = sum(dY * Y) with a random upstream dY (tiny shapes: GQA
// with H != Hkv, odd T, Dh 8, batches); the gradient contract (activation grads overwritten: prefilled
// with NaN; parameter grads accumulated: prefilled with noise that must survive); and the training
// forwards against the inference ops in lords::ops::ref where one exists.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "grad_test_util.h"
#include "lords/ops/attention.h"
#include "lords/ops/embedding.h"
#include "lords/ops/matmul.h"
#include "lords/ops/rmsnorm.h"
#include "lords/ops/rope.h"
#include "lords/ops/silu_mul.h"
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
using test::dot;
using test::expect_close;
using test::fd_grad;
using test::nans;
using test::randn;

namespace {

// Finite differences with h = 1e-6 in fp64 are good to ~1e-9 of the gradient's scale (truncation
// h^2 L'''/6 ~ 1e-12, rounding 1e-16 |L| / h), so a correct backward agrees to these; a wrong term is off by O(1).
constexpr double kFdRtol = 1e-6;
constexpr double kFdAtolRel = 1e-7;  // times max |gradient|
// ref<double> against the fp32 inference ops: fp32 rounding of their output (a few ulps).
constexpr double kFp32Rtol = 1e-6;

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// ---- embedding -------------------------------------------------------------------------------------

TEST(GradEmbedding, RefBackwardMatchesFiniteDifferences) {
  const int64_t M = 9, V = 5, D = 6;
  const std::vector<int32_t> tokens = {0, 3, 3, 1, 4, 3, 0, 2, 4};  // repeats must add up
  auto table = randn<double>(sz(V * D), 1);
  const auto dout = randn<double>(sz(M * D), 2);
  const auto fd = fd_grad(table, [&] {
    std::vector<double> out(sz(M * D));
    train::ref::embedding_fwd(out.data(), table.data(), tokens.data(), M, V, D);
    return dot(dout, out);
  });
  const auto before = randn<double>(sz(V * D), 3);
  auto dtable = before;
  train::ref::embedding_bwd(dtable.data(), dout.data(), tokens.data(), M, V, D);
  expect_close(added(dtable, before), fd, kFdRtol, kFdAtolRel, "dtable");
}

TEST(GradEmbedding, RefForwardMatchesOps) {
  const int64_t M = 7, V = 11, D = 13;
  const std::vector<int32_t> tokens = {10, 0, 5, 5, 3, 9, 1};
  const auto table = randn<float>(sz(V * D), 4);
  std::vector<float> ours(sz(M * D)), theirs(sz(M * D));
  train::ref::embedding_fwd(ours.data(), table.data(), tokens.data(), M, V, D);
  ops::ref::embedding(theirs.data(), table.data(), tokens.data(), M, V, D);
  EXPECT_EQ(ours, theirs);
}

// ---- rmsnorm ---------------------------------------------------------------------------------------

TEST(GradRmsnorm, RefBackwardMatchesFiniteDifferences) {
  const int64_t M = 4, D = 7;
  const float eps = 1e-5f;
  auto x = randn<double>(sz(M * D), 5);
  for (int64_t i = 0; i < M * D; ++i) x[sz(i)] *= std::pow(10.0, static_cast<double>(i / D % 3) - 1.0);
  auto w = randn<double>(sz(D), 6, 0.3, 1.0);
  const auto dy = randn<double>(sz(M * D), 7);
  const auto loss = [&] {
    std::vector<double> y(sz(M * D)), rstd(sz(M));
    train::ref::rmsnorm_fwd(y.data(), rstd.data(), x.data(), w.data(), M, D, eps);
    return dot(dy, y);
  };
  const auto fd_x = fd_grad(x, loss), fd_w = fd_grad(w, loss);
  std::vector<double> y(sz(M * D)), rstd(sz(M));
  train::ref::rmsnorm_fwd(y.data(), rstd.data(), x.data(), w.data(), M, D, eps);
  auto dx = nans<double>(sz(M * D));
  const auto dw0 = randn<double>(sz(D), 8);
  auto dw = dw0;
  train::ref::rmsnorm_bwd(dx.data(), dw.data(), dy.data(), x.data(), w.data(), rstd.data(), M, D);
  expect_close(dx, fd_x, kFdRtol, kFdAtolRel, "dx");
  expect_close(added(dw, dw0), fd_w, kFdRtol, kFdAtolRel, "dw");
}

TEST(GradRmsnorm, RefForwardMatchesOps) {
  const int64_t M = 5, D = 37;
  const float eps = 1e-6f;
  const auto x = randn<float>(sz(M * D), 9), w = randn<float>(sz(D), 10, 0.2, 1.0);
  std::vector<float> y32(sz(M * D)), r32(sz(M)), theirs(sz(M * D));
  ops::ref::rmsnorm(theirs.data(), x.data(), w.data(), M, D, eps);
  train::ref::rmsnorm_fwd(y32.data(), r32.data(), x.data(), w.data(), M, D, eps);
  EXPECT_EQ(y32, theirs);  // same fp32 rounding of rstd, same product order
  std::vector<double> y64(sz(M * D)), r64(sz(M));
  const auto xd = cast<double>(x), wd = cast<double>(w);
  train::ref::rmsnorm_fwd(y64.data(), r64.data(), xd.data(), wd.data(), M, D, eps);
  expect_close(theirs, y64, kFp32Rtol, 0, "y fp64 vs ops");
  expect_close(r32, r64, kFp32Rtol, 0, "rstd fp32 vs fp64");
}

// ---- rope ------------------------------------------------------------------------------------------

TEST(GradRope, RefBackwardMatchesFiniteDifferencesAndInvertsForward) {
  const int64_t M = 6, H = 3, Dh = 8;
  const std::vector<int64_t> pos = {0, 1, 2, 0, 1, 57};  // two packed sequences of 3
  std::vector<float> inv_freq(sz(Dh / 2));
  ops::rope_inv_freq(inv_freq.data(), Dh, 10000.0, {});
  auto x = randn<double>(sz(M * H * Dh), 11);
  const auto dy = randn<double>(sz(M * H * Dh), 12);
  const auto fd = fd_grad(x, [&] {
    auto y = x;
    train::ref::rope_fwd(y.data(), pos.data(), inv_freq.data(), M, H, Dh);
    return dot(dy, y);
  });
  auto dx = dy;  // in place: dy in, dx out
  train::ref::rope_bwd(dx.data(), pos.data(), inv_freq.data(), M, H, Dh);
  expect_close(dx, fd, kFdRtol, kFdAtolRel, "dx");
  // A rotation's transpose is its inverse: backward undoes forward.
  auto y = x;
  train::ref::rope_fwd(y.data(), pos.data(), inv_freq.data(), M, H, Dh);
  train::ref::rope_bwd(y.data(), pos.data(), inv_freq.data(), M, H, Dh);
  expect_close(y, x, 1e-14, 1e-14, "bwd(fwd(x))");
}

TEST(GradRope, RefForwardMatchesOps) {
  const int64_t M = 5, H = 4, Dh = 64;
  const std::vector<int64_t> pos = {0, 3, 100, 2047, 8191};
  std::vector<float> inv_freq(sz(Dh / 2));
  ops::rope_inv_freq(inv_freq.data(), Dh, 500000.0, {.kind = ops::RopeScalingKind::Llama3, .factor = 8.0});
  const auto x = randn<float>(sz(M * H * Dh), 13);
  auto ours = x, theirs = x;
  train::ref::rope_fwd(ours.data(), pos.data(), inv_freq.data(), M, H, Dh);
  ops::ref::rope(theirs.data(), pos.data(), inv_freq.data(), M, H, Dh);
  EXPECT_EQ(ours, theirs);
}

// ---- attention -------------------------------------------------------------------------------------

class GradAttentionRef : public ::testing::TestWithParam<train::AttentionTrainShape> {};

TEST_P(GradAttentionRef, BackwardMatchesFiniteDifferences) {
  const train::AttentionTrainShape s = GetParam();
  const size_t nq = sz(s.B * s.T * s.H * s.Dh), nkv = sz(s.B * s.T * s.Hkv * s.Dh), nr = sz(s.B * s.T * s.H);
  auto q = randn<double>(nq, 21), k = randn<double>(nkv, 22), v = randn<double>(nkv, 23);
  const auto dout = randn<double>(nq, 24);
  const auto loss = [&] {
    std::vector<double> out(nq), lse(nr);
    train::ref::attention_fwd(out.data(), lse.data(), q.data(), k.data(), v.data(), s);
    return dot(dout, out);
  };
  const auto fd_q = fd_grad(q, loss), fd_k = fd_grad(k, loss), fd_v = fd_grad(v, loss);
  std::vector<double> out(nq), lse(nr);
  train::ref::attention_fwd(out.data(), lse.data(), q.data(), k.data(), v.data(), s);
  auto dq = nans<double>(nq), dk = nans<double>(nkv), dv = nans<double>(nkv), delta = nans<double>(nr);
  train::ref::attention_bwd(dq.data(), dk.data(), dv.data(), delta.data(), dout.data(),
                            {.q = q.data(), .k = k.data(), .v = v.data(), .out = out.data(), .lse = lse.data()}, s);
  expect_close(dq, fd_q, kFdRtol, kFdAtolRel, "dq");
  expect_close(dk, fd_k, kFdRtol, kFdAtolRel, "dk");
  expect_close(dv, fd_v, kFdRtol, kFdAtolRel, "dv");
}

// {B, T, H, Hkv, Dh}: GQA 2:1 with a batch, MHA, MQA 6:1 with odd T, single-token sequences.
INSTANTIATE_TEST_SUITE_P(Shapes, GradAttentionRef,
                         ::testing::Values(train::AttentionTrainShape{2, 7, 4, 2, 8},
                                           train::AttentionTrainShape{1, 5, 3, 3, 4},
                                           train::AttentionTrainShape{1, 9, 6, 1, 8},
                                           train::AttentionTrainShape{3, 1, 2, 1, 2}),
                         test::attention_shape_name);

TEST(GradAttention, RefForwardMatchesOpsPerSequence) {
  const train::AttentionTrainShape s{.B = 2, .T = 13, .H = 6, .Hkv = 2, .Dh = 16};
  const size_t nq = sz(s.B * s.T * s.H * s.Dh), nkv = sz(s.B * s.T * s.Hkv * s.Dh), nr = sz(s.B * s.T * s.H);
  const auto q = randn<float>(nq, 25), k = randn<float>(nkv, 26), v = randn<float>(nkv, 27);
  std::vector<float> out32(nq), lse32(nr), theirs(nq);
  train::ref::attention_fwd(out32.data(), lse32.data(), q.data(), k.data(), v.data(), s);
  std::vector<double> out64(nq), lse64(nr);
  const auto qd = cast<double>(q), kd = cast<double>(k), vd = cast<double>(v);
  train::ref::attention_fwd(out64.data(), lse64.data(), qd.data(), kd.data(), vd.data(), s);
  // Each sequence is the inference op's prefill from position 0 with the sequence as the whole cache.
  for (int64_t b = 0; b < s.B; ++b) {
    const ops::AttentionShape os{.T = s.T, .p0 = 0, .H = s.H, .Hkv = s.Hkv, .Dh = s.Dh};
    ops::ref::attention(theirs.data() + s.q_at(b, 0, 0), q.data() + s.q_at(b, 0, 0), k.data() + s.kv_at(b, 0, 0),
                        v.data() + s.kv_at(b, 0, 0), os);
  }
  EXPECT_EQ(out32, theirs);  // same two-pass algorithm, same fp64 sums
  expect_close(theirs, out64, kFp32Rtol, kFp32Rtol, "out fp64 vs ops");
  expect_close(lse32, lse64, kFp32Rtol, 0, "lse fp32 vs fp64");
}

// ---- silu_mul --------------------------------------------------------------------------------------

TEST(GradSiluMul, RefBackwardMatchesFiniteDifferences) {
  const int64_t n = 40;
  auto gate = randn<double>(sz(n), 31, 4.0), up = randn<double>(sz(n), 32);
  gate[0] = 0.0, gate[1] = 30.0, gate[2] = -30.0;  // the sigmoid's flat ends and its centre
  const auto dout = randn<double>(sz(n), 33);
  const auto loss = [&] {
    std::vector<double> out(sz(n));
    train::ref::silu_mul_fwd(out.data(), gate.data(), up.data(), n);
    return dot(dout, out);
  };
  const auto fd_g = fd_grad(gate, loss), fd_u = fd_grad(up, loss);
  auto dgate = nans<double>(sz(n)), dup = nans<double>(sz(n));
  train::ref::silu_mul_bwd(dgate.data(), dup.data(), dout.data(), gate.data(), up.data(), n);
  expect_close(dgate, fd_g, kFdRtol, kFdAtolRel, "dgate");
  expect_close(dup, fd_u, kFdRtol, kFdAtolRel, "dup");
  // In place over the inputs gives the same result.
  auto g2 = gate, u2 = up;
  train::ref::silu_mul_bwd(g2.data(), u2.data(), dout.data(), g2.data(), u2.data(), n);
  EXPECT_EQ(g2, dgate);
  EXPECT_EQ(u2, dup);
}

TEST(GradSiluMul, RefForwardMatchesOps) {
  const int64_t n = 1000;
  const auto gate = randn<float>(sz(n), 34, 5.0), up = randn<float>(sz(n), 35);
  std::vector<float> ours(sz(n)), theirs(sz(n));
  train::ref::silu_mul_fwd(ours.data(), gate.data(), up.data(), n);
  ops::ref::silu_mul(theirs.data(), gate.data(), up.data(), n);
  EXPECT_EQ(ours, theirs);
}

// ---- linear ----------------------------------------------------------------------------------------

TEST(GradLinear, RefBackwardMatchesFiniteDifferences) {
  const train::LinearShape s{.M = 3, .N = 5, .K = 7};
  auto X = randn<double>(sz(s.M * s.K), 41), W = randn<double>(sz(s.N * s.K), 42), bias = randn<double>(sz(s.N), 43);
  const auto dY = randn<double>(sz(s.M * s.N), 44);
  const auto loss = [&] {
    std::vector<double> Y(sz(s.M * s.N));
    train::ref::linear_fwd(Y.data(), X.data(), W.data(), bias.data(), s);
    return dot(dY, Y);
  };
  const auto fd_x = fd_grad(X, loss), fd_w = fd_grad(W, loss), fd_b = fd_grad(bias, loss);
  auto dX = nans<double>(sz(s.M * s.K));
  const auto dW0 = randn<double>(sz(s.N * s.K), 45), db0 = randn<double>(sz(s.N), 46);
  auto dW = dW0, db = db0;
  train::ref::linear_bwd(dX.data(), dW.data(), db.data(), dY.data(), X.data(), W.data(), s);
  expect_close(dX, fd_x, kFdRtol, kFdAtolRel, "dX");
  expect_close(added(dW, dW0), fd_w, kFdRtol, kFdAtolRel, "dW");
  expect_close(added(db, db0), fd_b, kFdRtol, kFdAtolRel, "dbias");
  // Null outputs are skipped: only dW (frozen input, no bias) changes, by the same amount again.
  const auto dW1 = dW;
  train::ref::linear_bwd<double>(nullptr, dW.data(), nullptr, dY.data(), X.data(), W.data(), s);
  expect_close(added(dW, dW1), fd_w, kFdRtol, kFdAtolRel, "dW, second accumulation");
}

TEST(GradLinear, RefForwardMatchesOps) {
  const train::LinearShape s{.M = 4, .N = 9, .K = 33};
  const auto X = randn<float>(sz(s.M * s.K), 47), W = randn<float>(sz(s.N * s.K), 48), b = randn<float>(sz(s.N), 49);
  std::vector<float> ours(sz(s.M * s.N)), theirs(sz(s.M * s.N));
  for (const float* bias : {b.data(), static_cast<const float*>(nullptr)}) {
    train::ref::linear_fwd(ours.data(), X.data(), W.data(), bias, s);
    ops::ref::matmul(theirs.data(), X.data(), W.data(), bias, s.M, s.N, s.K);
    EXPECT_EQ(ours, theirs);
  }
}

// ---- cross-entropy ---------------------------------------------------------------------------------

// Targets and weights with every kind of row: counted (weights 1, 0.5, 2), ignored by target (-1, HF's
// -100) and by weight 0.
const std::vector<int32_t> kTargets = {3, -1, 10, 0, -100, 5, 7};
const std::vector<float> kWeights = {1.0f, 1.0f, 0.5f, 0.0f, 1.0f, 2.0f, 1.0f};

TEST(GradCrossEntropy, RefBackwardMatchesFiniteDifferences) {
  const int64_t M = 7, V = 11;
  auto logits = randn<double>(sz(M * V), 51, 3.0);
  const auto loss = [&] {
    return train::ref::cross_entropy_fwd_bwd<double>(nullptr, logits.data(), kTargets.data(), kWeights.data(), M, V)
        .loss;
  };
  const auto fd = fd_grad(logits, loss);
  auto dlogits = nans<double>(sz(M * V));
  const auto r =
      train::ref::cross_entropy_fwd_bwd(dlogits.data(), logits.data(), kTargets.data(), kWeights.data(), M, V);
  expect_close(dlogits, fd, kFdRtol, kFdAtolRel, "dlogits");
  // The loss itself: the weighted mean of lse - logit[target] over the counted rows, written out.
  double total = 0, count = 0;
  for (int64_t m = 0; m < M; ++m) {
    if (kTargets[sz(m)] < 0 || kWeights[sz(m)] == 0) continue;
    double se = 0;
    for (int64_t v = 0; v < V; ++v) se += std::exp(logits[sz(m * V + v)]);
    total += kWeights[sz(m)] * (std::log(se) - logits[sz(m * V + kTargets[sz(m)])]);
    count += kWeights[sz(m)];
  }
  EXPECT_EQ(r.count, 4.5);
  EXPECT_NEAR(r.loss, total / count, 1e-12 * std::abs(total / count));
  for (int64_t m : {1, 3, 4})  // ignored rows: exactly zero
    for (int64_t v = 0; v < V; ++v) EXPECT_EQ(dlogits[sz(m * V + v)], 0.0);
}

TEST(GradCrossEntropy, RefIsShiftInvariantInPlaceAndSafeWhenNothingCounts) {
  const int64_t M = 7, V = 11;
  const auto logits = randn<float>(sz(M * V), 52, 3.0);
  std::vector<float> g(sz(M * V));
  const auto r = train::ref::cross_entropy_fwd_bwd(g.data(), logits.data(), kTargets.data(), kWeights.data(), M, V);
  // Max subtraction: logits near 1e4 would overflow exp in any precision without it.
  auto shifted = logits;
  for (float& x : shifted) x += 1e4f;
  std::vector<float> gs(sz(M * V));
  const auto rs =
      train::ref::cross_entropy_fwd_bwd(gs.data(), shifted.data(), kTargets.data(), kWeights.data(), M, V);
  EXPECT_NEAR(rs.loss, r.loss, 1e-2);  // the shift rounds each logit to 1e4's fp32 ulp (~1e-3)
  expect_close(gs, g, 0, 2e-3, "dlogits shifted by 1e4");
  // In place: dlogits over logits.
  auto inplace = logits;
  const auto ri =
      train::ref::cross_entropy_fwd_bwd(inplace.data(), inplace.data(), kTargets.data(), kWeights.data(), M, V);
  EXPECT_EQ(ri.loss, r.loss);
  EXPECT_EQ(inplace, g);
  // No counted row: loss 0, zero gradient, no NaN.
  const std::vector<int32_t> none(sz(M), -100);
  auto gz = nans<float>(sz(M * V));
  const auto rz = train::ref::cross_entropy_fwd_bwd(gz.data(), logits.data(), none.data(), nullptr, M, V);
  EXPECT_EQ(rz.loss, 0.0);
  EXPECT_EQ(rz.count, 0.0);
  EXPECT_EQ(gz, std::vector<float>(sz(M * V), 0.0f));
}

}  // namespace
