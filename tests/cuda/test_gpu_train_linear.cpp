// GpuTrainLinear (train/gpu) against the CPU TrainableLinear it is uploaded from, for every kind, on
// random weights of awkward shapes (N 37, K 45; M 1 and 7), with a bias, and with the dS tile cut to 4
// rows so the tiled backward runs a partial last tile. fp32 on both sides, different summation orders:
// relative errors (to each tensor's norm) below 1e-5, 1e-4 for FakeQuant, whose codes may take the
// other side of a midpoint when S differs by an ulp.
#include <gtest/gtest.h>

#include <optional>
#include <random>

#include "cuda/gpu_test_util.h"
#include "lords/cuda/blas_handle.h"
#include "lords/train/gpu/gpu_train_linear.h"
#include "train/qlinear_test_util.h"

namespace lords::train {
namespace {

using test::make_qdata;
using test::normal_vec;

struct Case {
  const char* name;
  LinearKind kind;
  ops::QScaleKind scale;
  int64_t M;
};

class GpuTrainLinearTest : public ::testing::TestWithParam<Case> {};

TEST_P(GpuTrainLinearTest, MatchesTheCpuLinear) {
  LORDS_REQUIRE_GPU();
  const Case c = GetParam();
  const int64_t N = 37, K = 45, M = c.M;
  const bool block = c.scale == ops::QScaleKind::Block;
  const test::QData d = make_qdata(c.scale, N, K, block ? 16 : 3, 3, 31);
  TrainableLinear<float> host =
      TrainableLinear<float>::quantized("w", d.q(), c.kind, normal_vec(N, 32), runtime::Backend::Cpu);
  if (c.kind == LinearKind::Lora) {
    const test::VecF A = normal_vec(2 * K, 33, 0.2f), B = normal_vec(N * 2, 34, 0.2f);
    host.set_lora(2, 4.0f, A.data(), B.data(), 0);
  }
  // Move every trainable tensor off its initial value: a FakeQuant latent W starts at W_hat exactly, so
  // W / S of the extreme codes sits on the STE boundary, where an ulp of S decides the mask.
  std::mt19937 rng(37);
  std::normal_distribution<float> noise(0.0f, 0.01f);
  for (const ParamRef<float>& p : host.params())
    for (int64_t i = 0; i < p.size; ++i) p.value[i] += noise(rng);
  GpuTrainLinear dev = GpuTrainLinear::upload(host);
  const test::VecF X = normal_vec(M * K, 35), dY = normal_vec(M * N, 36);

  // CPU.
  LinearContext hctx;
  LinearCache<float> hcache;
  test::VecF Y(M * N), dX(M * K);
  host.forward(Y.data(), hcache, X.data(), M, hctx);
  host.backward(dX.data(), dY.data(), X.data(), hcache, M, hctx);

  // GPU, the dS tile 4 rows (N = 37: nine full tiles and a last one of 1).
  cuda::BlasHandles blas;
  GpuLinearScratch scratch;
  GpuLinearContext ctx{blas.cublas(), blas.stream(), &scratch};
  ctx.tile_elems = 4 * K;
  GpuLinearCache cache;
  cuda::DeviceBuffer<float> gX(X), gdY(dY), gY(M * N), gdX(M * K);
  dev.forward(gY.data(), cache, gX.data(), M, ctx);
  dev.backward(gdX.data(), gdY.data(), gX.data(), cache, M, ctx);
  LORDS_CUDA_CHECK(cudaDeviceSynchronize());

  const double tol = c.kind == LinearKind::FakeQuant ? 1e-4 : 1e-5;
  auto wide = [](const float* p, int64_t n) { return std::vector<double>(p, p + n); };
  EXPECT_LT(lords::test::rel_err(gY.to_host(), wide(Y.data(), M * N)), tol);
  EXPECT_LT(lords::test::rel_err(gdX.to_host(), wide(dX.data(), M * K)), tol);
  const std::vector<ParamRef<float>> hp = host.params();
  const std::vector<GpuParam> dp = dev.params();
  ASSERT_EQ(hp.size(), dp.size());
  for (size_t i = 0; i < hp.size(); ++i) {
    std::vector<float> g(static_cast<size_t>(dp[i].size));
    LORDS_CUDA_CHECK(cudaMemcpy(g.data(), dp[i].grad, g.size() * sizeof(float), cudaMemcpyDeviceToHost));
    EXPECT_LT(lords::test::rel_err(g, wide(hp[i].grad, hp[i].size)), tol) << hp[i].name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, GpuTrainLinearTest,
    ::testing::Values(Case{"quantized_lowrank_m7", LinearKind::Quantized, ops::QScaleKind::LowRank, 7},
                      Case{"quantized_block_m1", LinearKind::Quantized, ops::QScaleKind::Block, 1},
                      Case{"lords_m7", LinearKind::Lords, ops::QScaleKind::LowRank, 7},
                      Case{"lords_m1", LinearKind::Lords, ops::QScaleKind::LowRank, 1},
                      Case{"fakequant_m7", LinearKind::FakeQuant, ops::QScaleKind::LowRank, 7},
                      Case{"lora_block_m7", LinearKind::Lora, ops::QScaleKind::Block, 7},
                      Case{"lora_lowrank_m1", LinearKind::Lora, ops::QScaleKind::LowRank, 1}),
    [](const auto& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace lords::train
