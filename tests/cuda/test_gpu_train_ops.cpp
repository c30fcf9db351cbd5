// The GPU training kernels (train/gpu, and the training entries of cuda/ops) against the fp64 ref::
// ops of train/ on fresh random inputs. Tolerances are relative to the norm of the reference: fp32
// kernels against fp64 sums land near 1e-6; 2e-5 (5e-5 for the attention backward, whose dS terms
// cancel) leaves room for reordered fp32 sums and nothing more.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cuda/gpu_test_util.h"
#include "lords/cuda/device_buffer.h"
#include "lords/cuda/ops/rmsnorm.h"
#include "lords/cuda/ops/rope.h"
#include "lords/cuda/ops/silu_mul.h"
#include "lords/cuda/quant/gpu_codebook.h"
#include "lords/quant/codebook.h"
#include "lords/train/fake_quant.h"
#include "lords/train/gpu/attention_train.h"
#include "lords/train/gpu/train_kernels.h"
#include "lords/train/grad_attention.h"
#include "lords/train/grad_cross_entropy.h"
#include "lords/train/grad_rmsnorm.h"
#include "lords/train/grad_rope.h"
#include "lords/train/grad_silu_mul.h"

namespace lords::train {
namespace {

using cuda::DeviceBuffer;
using lords::test::product_f64;
using lords::test::rel_err;

std::vector<float> randv(size_t n, std::mt19937& rng, float scale = 1.0f) {
  return lords::test::gpu_random_vec(n, rng, scale);
}
std::vector<double> widen(const std::vector<float>& v) { return {v.begin(), v.end()}; }

TEST(GpuTrainOps, RmsnormForwardAndBackward) {
  LORDS_REQUIRE_GPU();
  std::mt19937 rng(1);
  for (const auto& [M, D] : {std::pair<int64_t, int64_t>{1, 7}, {37, 576}, {5, 1000}}) {
    const auto x = randv(M * D, rng), w = randv(D, rng), dy = randv(M * D, rng);
    std::vector<double> y(M * D), rstd(M), dx(M * D), dw(D);
    const auto xd = widen(x), wd = widen(w), dyd = widen(dy);
    ref::rmsnorm_fwd<double>(y.data(), rstd.data(), xd.data(), wd.data(), M, D, 1e-5f);
    ref::rmsnorm_bwd<double>(dx.data(), dw.data(), dyd.data(), xd.data(), wd.data(), rstd.data(), M, D);
    DeviceBuffer<float> gx(x), gw(w), gdy(dy), gy(M * D), gr(M), gdx(M * D);
    cuda::rmsnorm_fwd(gy.data(), gr.data(), gx.data(), gw.data(), M, D, 1e-5f, nullptr);
    cuda::rmsnorm_bwd(gdx.data(), gdy.data(), gx.data(), gw.data(), gr.data(), M, D, nullptr);
    EXPECT_LT(rel_err(gy.to_host(), y), 2e-6) << M << "x" << D;
    EXPECT_LT(rel_err(gr.to_host(), rstd), 2e-6);
    EXPECT_LT(rel_err(gdx.to_host(), dx), 2e-5);
  }
}

TEST(GpuTrainOps, RopeForwardAndInverseMatchRef) {
  LORDS_REQUIRE_GPU();
  std::mt19937 rng(2);
  const int64_t nseq = 3, T = 19, H = 3, Dh = 10, M = nseq * T;
  std::vector<float> inv_freq(Dh / 2);
  for (int64_t i = 0; i < Dh / 2; ++i) inv_freq[i] = std::pow(10000.0f, -2.0f * i / Dh);
  std::vector<int64_t> pos(M);
  for (int64_t m = 0; m < M; ++m) pos[m] = m % T;
  const auto x = randv(M * H * Dh, rng);
  auto fwd = widen(x), bwd = widen(x);
  ref::rope_fwd<double>(fwd.data(), pos.data(), inv_freq.data(), M, H, Dh);
  ref::rope_bwd<double>(bwd.data(), pos.data(), inv_freq.data(), M, H, Dh);
  DeviceBuffer<float> f(inv_freq), a(x), b(x);
  cuda::rope_sequences(a.data(), nseq, T, false, f.data(), H, Dh, nullptr);
  cuda::rope_sequences(b.data(), nseq, T, true, f.data(), H, Dh, nullptr);
  EXPECT_LT(rel_err(a.to_host(), fwd), 2e-6);
  EXPECT_LT(rel_err(b.to_host(), bwd), 2e-6);
}

TEST(GpuTrainOps, SiluMulBackward) {
  LORDS_REQUIRE_GPU();
  std::mt19937 rng(3);
  const int64_t n = 100003;
  const auto g = randv(n, rng, 3.0f), u = randv(n, rng), dy = randv(n, rng);
  std::vector<double> dg(n), du(n);
  const auto gd = widen(g), ud = widen(u), dyd = widen(dy);
  ref::silu_mul_bwd<double>(dg.data(), du.data(), dyd.data(), gd.data(), ud.data(), n);
  DeviceBuffer<float> G(g), U(u), DY(dy), DG(n), DU(n);
  cuda::silu_mul_bwd(DG.data(), DU.data(), DY.data(), G.data(), U.data(), n, nullptr);
  EXPECT_LT(rel_err(DG.to_host(), dg), 2e-6);
  EXPECT_LT(rel_err(DU.to_host(), du), 2e-6);
}

class GpuTrainAttention : public ::testing::TestWithParam<AttentionTrainShape> {};

TEST_P(GpuTrainAttention, ForwardAndBackwardMatchRef) {
  LORDS_REQUIRE_GPU();
  const AttentionTrainShape s = GetParam();
  std::mt19937 rng(4);
  const size_t nq = s.B * s.T * s.H * s.Dh, nk = s.B * s.T * s.Hkv * s.Dh, nr = s.B * s.T * s.H;
  const auto q = randv(nq, rng), k = randv(nk, rng), v = randv(nk, rng), dout = randv(nq, rng);
  const auto qd = widen(q), kd = widen(k), vd = widen(v), dod = widen(dout);
  std::vector<double> out(nq), lse(nr), dq(nq), dk(nk), dv(nk), delta(nr);
  ref::attention_fwd<double>(out.data(), lse.data(), qd.data(), kd.data(), vd.data(), s);
  ref::attention_bwd<double>(dq.data(), dk.data(), dv.data(), delta.data(), dod.data(),
                             {qd.data(), kd.data(), vd.data(), out.data(), lse.data()}, s);
  DeviceBuffer<float> Q(q), K(k), Vb(v), DO(dout), O(nq), L(nr), DQ(nq), DK(nk), DV(nk), DL(nr);
  gpu::attention_fwd(O.data(), L.data(), Q.data(), K.data(), Vb.data(), s, nullptr);
  gpu::attention_bwd(DQ.data(), DK.data(), DV.data(), DL.data(), DO.data(),
                     {Q.data(), K.data(), Vb.data(), O.data(), L.data()}, s, nullptr);
  EXPECT_LT(rel_err(O.to_host(), out), 2e-5);
  EXPECT_LT(rel_err(L.to_host(), lse), 2e-6);
  EXPECT_LT(rel_err(DL.to_host(), delta), 2e-5);
  EXPECT_LT(rel_err(DQ.to_host(), dq), 5e-5);
  EXPECT_LT(rel_err(DK.to_host(), dk), 5e-5);
  EXPECT_LT(rel_err(DV.to_host(), dv), 5e-5);
}

// MHA, GQA 3, MQA; head dims 64, an odd 40 (lanes partly idle), 8 and 160 (5 dims per lane, DPL 8).
INSTANTIATE_TEST_SUITE_P(Shapes, GpuTrainAttention,
                         ::testing::Values(AttentionTrainShape{2, 17, 4, 4, 64}, AttentionTrainShape{3, 9, 6, 2, 40},
                                           AttentionTrainShape{1, 33, 4, 1, 8},
                                           AttentionTrainShape{1, 5, 2, 1, 160}));

TEST(GpuTrainOps, CrossEntropyRowsMatchRef) {
  LORDS_REQUIRE_GPU();
  std::mt19937 rng(5);
  const int64_t M = 13, V = 3001;
  const auto logits = randv(M * V, rng, 4.0f);
  std::vector<int32_t> tgt(M);
  std::vector<float> w(M);
  for (int64_t m = 0; m < M; ++m) tgt[m] = static_cast<int32_t>(rng() % V), w[m] = 0.25f * (m % 4);  // some 0
  tgt[2] = -100;
  std::vector<double> dl(M * V);
  const auto ld = widen(logits);
  const CrossEntropyResult want = ref::cross_entropy_fwd_bwd<double>(dl.data(), ld.data(), tgt.data(), w.data(), M, V);
  // The GPU takes coef = grad_scale / total and leaves per-row losses; ref's gradient is of its mean.
  DeviceBuffer<float> L(logits), R(M), W(w);
  DeviceBuffer<int32_t> Tg(tgt);
  gpu::cross_entropy_rows(L.data(), R.data(), Tg.data(), W.data(), M, V, true, static_cast<float>(1.0 / want.count),
                          nullptr);
  const std::vector<float> rows = R.to_host();
  double loss = 0;
  for (int64_t m = 0; m < M; ++m) loss += w[m] * rows[m];
  EXPECT_NEAR(loss / want.count, want.loss, 2e-6 * want.loss);
  EXPECT_LT(rel_err(L.to_host(), dl), 2e-6);
}

TEST(GpuTrainOps, FakeQuantCodesAndSteMatchRef) {
  LORDS_REQUIRE_GPU();
  std::mt19937 rng(6);
  const int64_t N = 24, K = 40, r = 3, M = 5;
  for (int bits : {2, 3, 4}) {
    const quant::Codebook cb = quant::make_codebook(quant::CodebookKind::NF, bits);
    const auto W = randv(N * K, rng, 0.5f), B = randv(N * r, rng, 0.6f), A = randv(r * K, rng, 0.6f);
    const auto X = randv(M * K, rng), dY = randv(M * N, rng);
    const FakeQuantWeight<float> fw{N, K, r, bits, W.data(), B.data(), A.data(), cb.levels.data()};
    std::vector<float> what(N * K);
    std::vector<uint8_t> codes(N * K);
    ref::fake_quant_weight<float>(what.data(), codes.data(), fw);
    // S on the device from the same fp32 products the ref forms (B A in fp64 -> fp32 differs by an ulp,
    // which may move a tie: compare codes where the quotient is not within 1e-5 of a midpoint).
    const std::vector<float> S = product_f64(B, A, N, r, K);
    DeviceBuffer<float> SW(S), Wd(W);
    DeviceBuffer<uint8_t> C(N * K);
    gpu::fake_quant_codes(SW.data(), C.data(), Wd.data(), cuda::gpu_codebook(cb), N * K, nullptr);
    const std::vector<uint8_t> gc = C.to_host();
    int64_t checked = 0;
    for (int64_t i = 0; i < N * K; ++i) {
      const float x = W[i] / S[i];
      bool near_mid = false;
      for (size_t c = 0; c + 1 < cb.levels.size(); ++c)
        near_mid |= std::fabs(x - 0.5f * (cb.levels[c] + cb.levels[c + 1])) < 1e-5f;
      if (near_mid) continue;
      ++checked;
      EXPECT_EQ(gc[i], codes[i]) << "bits " << bits << " element " << i;
    }
    EXPECT_GT(checked, N * K * 9 / 10);
    // STE: dW = mask (.) dY^T X against the ref backward's dW.
    std::vector<float> dX(M * K), dW(N * K, 0.0f), dB(N * r, 0.0f), dA(r * K, 0.0f);
    ref::fake_quant_linear_bwd<float>({dX.data(), dW.data(), dB.data(), dA.data()}, dY.data(), X.data(), codes.data(),
                                      M, fw, {});
    const std::vector<float> G = product_f64(dY, X, N, M, K, /*l_transposed=*/true);  // dY^T X
    DeviceBuffer<float> gW(N * K), Gd(G), Sd(S);
    gW.zero();
    gpu::ste_accumulate(gW.data(), Gd.data(), Sd.data(), Wd.data(), cb.levels.front(), cb.levels.back(), true, N * K,
                        nullptr);
    EXPECT_LT(rel_err(gW.to_host(), widen(dW)), 1e-5) << "bits " << bits;
  }
}

TEST(GpuTrainOps, LevelsAndBlockDequant) {
  LORDS_REQUIRE_GPU();
  std::mt19937 rng(7);
  const int64_t N = 9, K = 70, G = 16, nb = (K + G - 1) / G;
  const quant::Codebook cb = quant::make_codebook(quant::CodebookKind::NF, 3);
  std::vector<uint8_t> codes(N * K);
  for (auto& c : codes) c = static_cast<uint8_t>(rng() % 8);
  const auto scales = randv(N * nb, rng), S = randv(N * K, rng);
  std::vector<double> block(N * K), lv(N * K);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      block[n * K + k] = static_cast<double>(cb.levels[codes[n * K + k]]) * scales[n * nb + k / G];
      lv[n * K + k] = static_cast<double>(cb.levels[codes[n * K + k]]) * S[n * K + k];
    }
  DeviceBuffer<uint8_t> C(codes);
  DeviceBuffer<float> L(cb.levels), Sc(scales), Wb(N * K), Sd(S);
  gpu::dequant_block(Wb.data(), C.data(), L.data(), Sc.data(), N, K, G, nullptr);
  gpu::mul_by_levels(Sd.data(), C.data(), L.data(), N * K, nullptr);
  EXPECT_LT(rel_err(Wb.to_host(), block), 1e-7);
  EXPECT_LT(rel_err(Sd.to_host(), lv), 1e-7);
}

}  // namespace
}  // namespace lords::train
