// GPTQ error feedback: reduces to RTN / the plain Q-step when H is diagonal, beats them on correlated
// inputs, and LoRDS-GPTQ never ends worse than its init.
#include <gtest/gtest.h>

#include <random>

#include "lords/core/error.h"
#include "lords/quant/gptq.h"
#include "lords/quant/lords_init.h"
#include "quant_test_util.h"

using namespace lords;
using namespace lords::quant;

namespace {

float keep(float v) { return v; }

// H = X^T X / T for T correlated inputs (a random mixing of iid features, plus per-channel energy).
std::vector<double> correlated_hessian(int64_t K, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  const int64_t T = 4 * K, F = K / 2;
  std::vector<double> mix(static_cast<size_t>(F * K)), X(static_cast<size_t>(T * K));
  for (double& m : mix) m = normal(rng);
  std::vector<double> energy(static_cast<size_t>(K));
  for (double& e : energy) e = std::exp(normal(rng));
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> z(static_cast<size_t>(F));
    for (double& v : z) v = normal(rng);
    for (int64_t k = 0; k < K; ++k) {
      double s = 0.3 * normal(rng);
      for (int64_t f = 0; f < F; ++f) s += z[static_cast<size_t>(f)] * mix[static_cast<size_t>(f * K + k)] / std::sqrt(F);
      X[static_cast<size_t>(t * K + k)] = s * energy[static_cast<size_t>(k)];
    }
  }
  std::vector<double> H(static_cast<size_t>(K * K), 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < K; ++i)
      for (int64_t j = 0; j < K; ++j)
        H[static_cast<size_t>(i * K + j)] += X[static_cast<size_t>(t * K + i)] * X[static_cast<size_t>(t * K + j)] / T;
  return H;
}

std::vector<double> identity(int64_t K) {
  std::vector<double> H(static_cast<size_t>(K * K), 0.0);
  for (int64_t i = 0; i < K; ++i) H[static_cast<size_t>(i * K + i)] = 1.0;
  return H;
}

TEST(Gptq, DiagonalHessianGivesRtnCodes) {
  const int64_t N = 24, K = 96, G = 32;
  const auto W = test::heavy_tailed_rows(N, K, 3);
  const Codebook cb = make_codebook(CodebookKind::NF, 3);
  const BlockwiseQuant rtn = quantize_blockwise(W.data(), N, K, G, cb, &keep);
  for (bool act_order : {false, true}) {
    const BlockwiseQuant g = gptq_blockwise(W.data(), N, K, G, cb, identity(K), {0.01, act_order, 16}, &keep);
    EXPECT_EQ(g.codes, rtn.codes);
    EXPECT_EQ(g.scales, rtn.scales);
  }
}

TEST(Gptq, BeatsRtnOnCorrelatedInputs) {
  const int64_t N = 32, K = 80, G = 16;  // K not a multiple of the lazy batch
  const auto W = test::heavy_tailed_rows(N, K, 5);
  const auto H = correlated_hessian(K, 9);
  for (int bits : {2, 3, 4}) {
    const Codebook cb = make_codebook(CodebookKind::NF, bits);
    std::vector<float> w_rtn(W.size()), w_gptq(W.size());
    dequantize_blockwise(quantize_blockwise(W.data(), N, K, G, cb, &keep), cb, w_rtn.data());
    for (bool act_order : {false, true}) {
      dequantize_blockwise(gptq_blockwise(W.data(), N, K, G, cb, H, {0.01, act_order, 32}, &keep), cb, w_gptq.data());
      EXPECT_LT(hessian_objective(W.data(), w_gptq.data(), N, K, H),
                0.9 * hessian_objective(W.data(), w_rtn.data(), N, K, H))
          << bits << " bits, act_order " << act_order;
    }
  }
}

TEST(Gptq, CodesUnderFixedScaleReduceToQStepForDiagonalH) {
  const int64_t N = 16, K = 72, G = 24;
  const auto W = test::heavy_tailed_rows(N, K, 11);
  const Codebook cb = make_codebook(CodebookKind::NF, 4);
  const SvdInit init = svd_init_from_blocks(W.data(), N, K, G, 2);
  std::vector<float> S(W.size());
  lowrank_product(init.scale, S.data());
  std::vector<uint8_t> plain(W.size()), fed(W.size());
  q_step(W.data(), S.data(), N, K, cb, plain.data());
  gptq_codes(W.data(), S.data(), N, K, cb, identity(K), {}, fed.data());
  EXPECT_EQ(plain, fed);
}

TEST(Gptq, LordsGptqNeverWorseThanInitAndBeatsPlainQStep) {
  const int64_t N = 32, K = 96, G = 32;
  const auto W = test::heavy_tailed_rows(N, K, 21);
  const auto H = correlated_hessian(K, 4);
  const Codebook cb = make_codebook(CodebookKind::NF, 3);
  const SvdInit init = svd_init_from_blocks(W.data(), N, K, G, parity_rank(N, K, G));
  const SolverResult r = refine_lords_gptq(W.data(), cb, init.scale, H, {}, 6);
  EXPECT_LE(r.best_objective, r.init_objective);
  EXPECT_LT(r.best_objective, 0.9 * r.init_objective);
  std::vector<float> w_hat(W.size());
  dequantize_lords(r.scale, r.codes.data(), cb, w_hat.data());
  EXPECT_NEAR(hessian_objective(W.data(), w_hat.data(), N, K, H), r.best_objective, 1e-9 * r.init_objective);
}

TEST(Gptq, RejectsWrongHessianSize) {
  const auto W = test::heavy_tailed(4, 8, 1);
  const Codebook cb = make_codebook(CodebookKind::NF, 4);
  EXPECT_THROW(gptq_blockwise(W.data(), 4, 8, 4, cb, identity(7), {}, &keep), Error);
}

}  // namespace
