// GPU qmatmul against the scalar reference (ops::ref::qmatmul, fp64 accumulation) on fresh random
// weights: bits 2/3/4, NF levels, low-rank ranks 1..64 and block sizes 64/128, fp16 and bf16
// activations, M = 1, 3, 17 (decode), 40, 100 (fused prefill tile) and 600 (dequantize + cuBLAS), K
// off every tile size (200, 1000) and N off the row tiles. Y is NaN-poisoned before each call, so an
// unwritten output fails. The reference gets X rounded to the activation type, so the tolerance
// covers only W_hat's rounding: fp16 keeps 11 significant bits (level, scale and their product are
// each rounded once: ~3 * 2^-12 per weight, averaging down over K), bf16 8.
// The fragment layout's pack/unpack round trip needs no GPU.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gpu_test_util.h"
#include "lords/core/error.h"
#include "lords/cuda/qmatmul.h"
#include "lords/cuda/ops/convert.h"
#include "lords/cuda/qmm/fragment_layout.h"
#include "lords/ops/qmatmul.h"
#include "lords/quant/codebook.h"
#include "lords/quant/pack.h"

namespace lords::cuda {
namespace {

constexpr double kTolF16 = 4e-3;
constexpr double kTolBF16 = 2.5e-2;

TEST(FragmentLayout, RoundTripsEveryWidthAndOddShape) {
  std::mt19937 rng(7);
  for (int bits : {2, 3, 4})
    for (auto [N, K] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {16, 64}, {17, 65}, {33, 200}, {48, 576}}) {
      std::uniform_int_distribution<int> code(0, (1 << bits) - 1);
      std::vector<uint8_t> codes(static_cast<size_t>(N * K));
      for (auto& c : codes) c = static_cast<uint8_t>(code(rng));
      const auto packed = pack_fragment_codes(codes.data(), N, K, bits);
      EXPECT_EQ(static_cast<int64_t>(packed.size()), round_up(N, 16) * round_up(K, 64) * bits / 8);
      std::vector<uint8_t> back(codes.size(), 0xFF);
      unpack_fragment_codes(packed.data(), N, K, bits, back.data());
      EXPECT_EQ(back, codes) << "bits " << bits << " N " << N << " K " << K;
    }
}

TEST(FragmentLayout, ThreadZeroHoldsItsFragmentElements) {
  // 4 bits, one row tile, one group: lane 0 (g = 0, t = 0), step 0 holds (row, k) = (0,0) (0,1)
  // (8,0) (8,1) (0,8) (0,9) (8,8) (8,9) as nibbles 0..7 of its first word.
  std::vector<uint8_t> codes(16 * 64, 0);
  const int rows[8] = {0, 0, 8, 8, 0, 0, 8, 8}, cols[8] = {0, 1, 0, 1, 8, 9, 8, 9};
  for (int e = 0; e < 8; ++e) codes[rows[e] * 64 + cols[e]] = static_cast<uint8_t>(e + 1);
  const auto packed = pack_fragment_codes(codes.data(), 16, 64, 4);
  const uint32_t word = packed[0] | packed[1] << 8 | packed[2] << 16 | uint32_t(packed[3]) << 24;
  EXPECT_EQ(word, 0x87654321u);
}

struct GpuCase {
  ops::QScaleKind kind;
  int bits;
  int64_t rg;  // rank or block size
  int64_t N, K;
  ActType act;
};

struct HostWeight {
  std::vector<uint8_t> packed;
  std::vector<float> levels, B, A, scales;
  ops::QWeight w;
};

// mixed_sign: factor columns beyond the first drawn N(0, 0.3) instead of positive.
HostWeight random_weight(const GpuCase& c, std::mt19937& rng, bool mixed_sign = false) {
  HostWeight h;
  h.levels = quant::make_codebook(quant::CodebookKind::NF, c.bits).levels;
  std::uniform_int_distribution<int> code(0, (1 << c.bits) - 1);
  std::vector<uint8_t> codes(static_cast<size_t>(c.N * c.K));
  for (auto& q : codes) q = static_cast<uint8_t>(code(rng));
  h.packed = quant::pack_codes(codes.data(), c.N, c.K, c.bits);
  std::uniform_real_distribution<float> pos(0.2f, 1.0f);
  h.w.kind = c.kind;
  h.w.N = c.N, h.w.K = c.K, h.w.bits = c.bits;
  h.w.codes = h.packed.data();
  h.w.levels = h.levels.data();
  if (c.kind == ops::QScaleKind::LowRank) {
    // Positive factors like the SVD init of absmax scales: S = B A stays away from zero.
    h.B.resize(static_cast<size_t>(c.N * c.rg));
    h.A.resize(static_cast<size_t>(c.rg * c.K));
    std::normal_distribution<float> mixed(0.f, 0.3f);
    for (int64_t n = 0; n < c.N; ++n)
      for (int64_t j = 0; j < c.rg; ++j)
        h.B[size_t(n * c.rg + j)] = (mixed_sign && j > 0 ? mixed(rng) : pos(rng)) / std::sqrt(float(c.rg));
    for (int64_t j = 0; j < c.rg; ++j)
      for (int64_t k = 0; k < c.K; ++k) h.A[size_t(j * c.K + k)] = mixed_sign && j > 0 ? mixed(rng) : pos(rng);
    h.w.r = c.rg, h.w.B = h.B.data(), h.w.A = h.A.data();
  } else {
    h.scales.resize(static_cast<size_t>(c.N * ((c.K + c.rg - 1) / c.rg)));
    for (auto& v : h.scales) v = pos(rng);
    h.w.G = c.rg, h.w.scales = h.scales.data();
  }
  return h;
}

// X drawn in fp32, rounded to the activation type; returns the device bits and the rounded floats.
std::vector<uint16_t> random_x(int64_t M, int64_t K, ActType act, std::mt19937& rng, std::vector<float>& rounded) {
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<uint16_t> bits(static_cast<size_t>(M * K));
  rounded.resize(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) {
    const float v = d(rng);
    if (act == ActType::F16) {
      const __half h = __float2half_rn(v);
      std::memcpy(&bits[i], &h, 2);
      rounded[i] = __half2float(h);
    } else {
      const __nv_bfloat16 h = __float2bfloat16_rn(v);
      std::memcpy(&bits[i], &h, 2);
      rounded[i] = __bfloat162float(h);
    }
  }
  return bits;
}

// ws: the workspace to pass (a fresh one where null), or none at all with use_ws false (the Hopper
// prefill kernel then walks its tiles without stream-K).
void check_case(const GpuCase& c, int64_t M, QmmPath path, uint32_t seed, bool mixed_sign = false, bool use_ws = true,
                QmmWorkspace* ws = nullptr) {
  std::mt19937 rng(seed);
  HostWeight h = random_weight(c, rng, mixed_sign);
  std::vector<float> xr;
  const auto xbits = random_x(M, c.K, c.act, rng, xr);
  std::vector<float> ref(static_cast<size_t>(M * c.N));
  ops::ref::qmatmul(ref.data(), xr.data(), M, h.w);

  const GpuQWeight g = GpuQWeight::upload(h.w, c.act);
  DeviceBuffer<uint16_t> X(xbits);
  DeviceBuffer<float> Y(static_cast<size_t>(M * c.N));
  LORDS_CUDA_CHECK(cudaMemset(Y.data(), 0xFF, Y.bytes()));  // NaN
  QmmWorkspace own;
  if (!ws) ws = &own;
  qmatmul(Y.data(), X.data(), M, g, nullptr, use_ws ? ws : nullptr, path);
  LORDS_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> y = Y.to_host();
  const std::vector<double> ref64(ref.begin(), ref.end());
  const double err = test::rel_err(y, ref64);
  const double tol = c.act == ActType::F16 ? kTolF16 : kTolBF16;
  EXPECT_LT(err, tol) << (c.kind == ops::QScaleKind::LowRank ? "lowrank r" : "block G") << c.rg << " bits "
                      << c.bits << " N " << c.N << " K " << c.K << " M " << M << " " << act_type_name(c.act)
                      << " path " << int(path) << (use_ws ? "" : " no workspace");
}

TEST(QmatmulGpu, LowRankMatchesReference) {
  LORDS_REQUIRE_GPU();
  uint32_t seed = 100;
  for (ActType act : {ActType::F16, ActType::BF16})
    for (int bits : {2, 3, 4})
      for (int64_t r : {1, 28, 64})
        for (int64_t M : {1, 3, 12, 16, 17, 40, 100})
          check_case({ops::QScaleKind::LowRank, bits, r, 300, 1000, act}, M, QmmPath::Fused, seed++);
}

TEST(QmatmulGpu, BlockMatchesReference) {
  LORDS_REQUIRE_GPU();
  uint32_t seed = 200;
  for (ActType act : {ActType::F16, ActType::BF16})
    for (int bits : {2, 3, 4})
      for (int64_t G : {64, 128})
        for (int64_t M : {1, 3, 16, 17, 100})
          check_case({ops::QScaleKind::Block, bits, G, 130, 576, act}, M, QmmPath::Fused, seed++);
}

TEST(QmatmulGpu, DecodeSlicesKAndMixedSignFactors) {
  LORDS_REQUIRE_GPU();
  // Long K: the decode kernel cuts it into slices whose partial sums meet in Y; more row tiles than
  // one block holds, with a partial last block. Mixed-sign factors (beyond the first, as ALS leaves
  // them) check the fp16-accumulated scale tile where S has cancellation.
  uint32_t seed = 250;
  for (int bits : {2, 4})
    for (int64_t M : {1, 5, 9, 16}) {
      check_case({ops::QScaleKind::LowRank, bits, 28, 1100, 2048, ActType::F16}, M, QmmPath::Fused, seed++, true);
      check_case({ops::QScaleKind::LowRank, bits, 60, 600, 2000, ActType::BF16}, M, QmmPath::Fused, seed++, true);
      check_case({ops::QScaleKind::Block, bits, 128, 1100, 4096, ActType::F16}, M, QmmPath::Fused, seed++);
      check_case({ops::QScaleKind::Block, bits, 32, 700, 1000, ActType::F16}, M, QmmPath::Fused, seed++);
    }
}

TEST(QmatmulGpu, SingleTokenWalksManyChunksAndSlices) {
  LORDS_REQUIRE_GPU();
  // The one-token kernel is persistent: with 20000 rows each warp reduces several chunks of row tiles
  // in one stream, and K = 4160 (65 groups) leaves a short last K slice and padded k.
  uint32_t seed = 280;
  for (int bits : {3, 4}) {
    check_case({ops::QScaleKind::LowRank, bits, 28, 20000, 4160, ActType::F16}, 1, QmmPath::Fused, seed++, true);
    // ranks 24 and 40: an odd count of 8-column tiles (3, 5) in the padded 32 and 48
    check_case({ops::QScaleKind::LowRank, bits, 24, 3000, 4160, ActType::F16}, 1, QmmPath::Fused, seed++, true);
    check_case({ops::QScaleKind::LowRank, bits, 40, 3000, 1000, ActType::BF16}, 1, QmmPath::Fused, seed++, true);
    check_case({ops::QScaleKind::LowRank, bits, 60, 20000, 4160, ActType::BF16}, 1, QmmPath::Fused, seed++, true);
    check_case({ops::QScaleKind::Block, bits, 128, 20000, 4160, ActType::F16}, 1, QmmPath::Fused, seed++);
    check_case({ops::QScaleKind::Block, bits, 64, 20000, 4160, ActType::BF16}, 1, QmmPath::Fused, seed++);
  }
}

TEST(QmatmulGpu, SingleTokenWarpgroupKernelCoversEveryColumnCount) {
  LORDS_REQUIRE_GPU();
  // On Hopper, low-rank scales run the warpgroup-MMA one-token kernel, with N = the rank rounded up
  // to 8 columns: both ends of every N from 8 to 64 (ranks 1, 8, 9, 16, ..., 57, 64), each width,
  // both activation types. 1000 rows are 15.6 chunks of 64, so a chunk's last warps have no rows; K =
  // 4160 (65 groups) leaves the last K slice with groups past K (the kernel walks whole turns of its
  // register ring); K = 1001 takes the scalar x loads. Other GPUs run the same cases through the
  // mma.sync kernel.
  uint32_t seed = 270;
  for (int64_t r : {1, 8, 9, 16, 17, 24, 25, 32, 33, 40, 41, 48, 49, 56, 57, 64})
    for (int bits : {2, 3, 4}) {
      const ActType act = (r + bits) % 2 == 0 ? ActType::F16 : ActType::BF16;
      check_case({ops::QScaleKind::LowRank, bits, r, 1000, 4160, act}, 1, QmmPath::Fused, seed++, true);
      check_case({ops::QScaleKind::LowRank, bits, r, 77, 1001, act}, 1, QmmPath::Fused, seed++, true);
    }
  // Many chunks per warpgroup and several K slices at the shapes the kernel was tuned on.
  check_case({ops::QScaleKind::LowRank, 4, 28, 28672, 4096, ActType::F16}, 1, QmmPath::Fused, seed++, true);
  check_case({ops::QScaleKind::LowRank, 4, 24, 4096, 14336, ActType::BF16}, 1, QmmPath::Fused, seed++, true);
  check_case({ops::QScaleKind::LowRank, 3, 56, 4096, 14336, ActType::F16}, 1, QmmPath::Fused, seed++, true);
}

TEST(QmatmulGpu, NamesTheKernelEachCallRuns) {
  LORDS_REQUIRE_GPU();
  std::mt19937 rng(290);
  HostWeight lr = random_weight({ops::QScaleKind::LowRank, 4, 28, 64, 256, ActType::F16}, rng);
  HostWeight b32 = random_weight({ops::QScaleKind::Block, 4, 32, 64, 256, ActType::F16}, rng);
  const GpuQWeight g = GpuQWeight::upload(lr.w, ActType::F16), gb = GpuQWeight::upload(b32.w, ActType::F16);
  // Hopper: low-rank scales take the warpgroup-MMA form of the one-token kernel
  // (LORDS_QMM_GEMV_WGMMA=0 keeps the mma.sync one, for comparing them).
  const char* wg_off = std::getenv("LORDS_QMM_GEMV_WGMMA");
  const bool one_token_wgmma = device_props().cc_major == 9 && !(wg_off && wg_off[0] == '0');
  EXPECT_STREQ(qmatmul_kernel_name(1, g), one_token_wgmma ? "one-token-wgmma" : "one-token");
  EXPECT_STREQ(qmatmul_kernel_name(4, g), "decode");
  const char* prefill = device_props().cc_major == 9 ? "wgmma" : "fused";
  EXPECT_STREQ(qmatmul_kernel_name(40, g), prefill);
  EXPECT_STREQ(qmatmul_kernel_name(600, g), device_props().cc_major == 9 ? "wgmma" : "dequant+cublas");
  EXPECT_STREQ(qmatmul_kernel_name(5000, g), "dequant+cublas");
  EXPECT_STREQ(qmatmul_kernel_name(600, g, QmmPath::Fused), prefill);
  EXPECT_STREQ(qmatmul_kernel_name(1, gb), "decode");  // block size 32: one scale per 64 k does not hold
  // The crossover to dequantize + cuBLAS comes earlier for block scales on Hopper (1024 vs 4096).
  EXPECT_STREQ(qmatmul_kernel_name(1500, g), device_props().cc_major == 9 ? "wgmma" : "dequant+cublas");
  EXPECT_STREQ(qmatmul_kernel_name(3000, g), device_props().cc_major == 9 ? "wgmma" : "dequant+cublas");
  EXPECT_STREQ(qmatmul_kernel_name(1500, gb), "dequant+cublas");
}

TEST(QmatmulGpu, PrefillTilesTokensRowsAndK) {
  LORDS_REQUIRE_GPU();
  // The prefill kernel (warpgroup MMA on Hopper) in each token-block size (64, 128, 256 tokens) with
  // a partial last token block, a partial last row block (700 rows: 5.5 blocks of 128), odd and
  // long K (an odd count of 64-k blocks exercises the unpaired last one), every width, both scale
  // kinds, mixed-sign factors.
  uint32_t seed = 320;
  for (int bits : {2, 3, 4})
    for (int64_t M : {33, 100, 300}) {
      check_case({ops::QScaleKind::LowRank, bits, 28, 700, 1000, ActType::F16}, M, QmmPath::Fused, seed++, true);
      check_case({ops::QScaleKind::LowRank, bits, 64, 300, 4160, ActType::BF16}, M, QmmPath::Fused, seed++, true);
      check_case({ops::QScaleKind::LowRank, bits, 9, 130, 200, ActType::F16}, M, QmmPath::Fused, seed++, true);
      check_case({ops::QScaleKind::Block, bits, 128, 700, 1000, ActType::BF16}, M, QmmPath::Fused, seed++);
      check_case({ops::QScaleKind::Block, bits, 32, 300, 576, ActType::F16}, M, QmmPath::Fused, seed++);
    }
}

TEST(QmatmulGpu, PrefillWalksManyTilesPerBlock) {
  LORDS_REQUIRE_GPU();
  // The Hopper kernel is persistent (one block per SM): 19990 rows are 157 row blocks, so with 2 or 3
  // token blocks every block walks several tiles, and the buffer ring (4 k blocks a tile here) wraps
  // at a different place in each (other GPUs run the same shapes through the mma.sync kernel).
  uint32_t seed = 340;
  check_case({ops::QScaleKind::LowRank, 4, 28, 19990, 200, ActType::F16}, 300, QmmPath::Fused, seed++, true);
  check_case({ops::QScaleKind::LowRank, 3, 40, 19990, 250, ActType::BF16}, 300, QmmPath::Fused, seed++, true);
  check_case({ops::QScaleKind::Block, 4, 64, 19990, 200, ActType::F16}, 300, QmmPath::Fused, seed++);
}

TEST(QmatmulGpu, PrefillSplitsTheLastRoundsK) {
  LORDS_REQUIRE_GPU();
  // Without a workspace (no stream-K flags), on an H100 (132 SMs): 512 tokens x 10240 rows are 2 x 80
  // = 160 tiles, so the last round's 28 tiles run as two K halves each (16 k blocks allow no more)
  // that meet in Y by atomics, after their rows of Y are zeroed (Y starts as NaN here); 300 tokens x
  // 10000 rows leave 26 (a partial token block and row block among them), and K = 1100 halves into 9
  // and 9 blocks.
  uint32_t seed = 350;
  const bool mixed = true, ws = false;
  check_case({ops::QScaleKind::LowRank, 4, 28, 10240, 1024, ActType::F16}, 512, QmmPath::Fused, seed++, mixed, ws);
  check_case({ops::QScaleKind::Block, 4, 64, 10000, 1100, ActType::BF16}, 300, QmmPath::Fused, seed++, false, ws);
  check_case({ops::QScaleKind::LowRank, 4, 20, 10000, 1100, ActType::F16}, 300, QmmPath::Fused, seed++, mixed, ws);
  // 2 x 75 = 150 tiles leave 18 for the last round, and K = 2100 has 33 k blocks: 4 parts of 9, 9, 9, 6.
  check_case({ops::QScaleKind::LowRank, 4, 28, 9600, 2100, ActType::F16}, 300, QmmPath::Fused, seed++, mixed, ws);
}

TEST(QmatmulGpu, PrefillSharesOutTilesInKAcrossBlocks) {
  LORDS_REQUIRE_GPU();
  // Stream-K: with a workspace, 1-1.5 rounds of tiles are shared out evenly in k blocks, and a tile
  // split between two blocks meets in Y through a flag. On an H100 (132 SMs):
  // - 512 tokens x 10240 rows: 2 x 80 = 160 tiles of 16 k blocks, 19.4 k blocks a block;
  // - 300 tokens x 10200 rows, K = 200: 2 x 80 tiles of 4 k blocks (parts of 1-3 blocks; a partial
  //   token block);
  // - 300 tokens x 7000 rows, 3 bits in bf16 at rank 40 (128-token tiles): 3 x 55 = 165 tiles, K =
  //   1100 (18 k blocks, the last one partial), a partial row block;
  // - block scales, 300 tokens x 10000 rows, K = 1100: 2 x 79 = 158 tiles;
  // - 513 tokens x 3800 rows, 2 bits in bf16 at rank 24 (128-token tiles): 5 x 30 = 150 tiles, a
  //   one-token last token block.
  // The same workspace serves every call: its flags must be back at zero after each.
  QmmWorkspace ws;
  uint32_t seed = 360;
  const bool mixed = true;
  check_case({ops::QScaleKind::LowRank, 4, 28, 10240, 1024, ActType::F16}, 512, QmmPath::Fused, seed++, mixed, true, &ws);
  check_case({ops::QScaleKind::LowRank, 4, 28, 10200, 200, ActType::F16}, 300, QmmPath::Fused, seed++, mixed, true, &ws);
  check_case({ops::QScaleKind::LowRank, 3, 40, 7000, 1100, ActType::BF16}, 300, QmmPath::Fused, seed++, mixed, true, &ws);
  check_case({ops::QScaleKind::Block, 4, 64, 10000, 1100, ActType::F16}, 300, QmmPath::Fused, seed++, false, true, &ws);
  check_case({ops::QScaleKind::LowRank, 2, 24, 3800, 192, ActType::BF16}, 513, QmmPath::Fused, seed++, mixed, true, &ws);
  check_case({ops::QScaleKind::LowRank, 4, 28, 10200, 200, ActType::F16}, 300, QmmPath::Fused, seed++, mixed, true, &ws);
  std::vector<int> flags(static_cast<size_t>(ws.flag_count()));
  LORDS_CUDA_CHECK(cudaMemcpy(flags.data(), ws.flags(nullptr), flags.size() * sizeof(int), cudaMemcpyDeviceToHost));
  EXPECT_TRUE(std::all_of(flags.begin(), flags.end(), [](int f) { return f == 0; }));
}

TEST(QmatmulGpu, WaitsForTheKernelThatWritesX) {
  LORDS_REQUIRE_GPU();
  // On Hopper the one-token and prefill kernels start early (programmatic dependent launch) where no
  // memset of Y comes before them: a kernel writing X just before must still be seen. Each round a
  // conversion kernel writes a fresh X, and qmatmul reads it at once on the same stream: 28672 x 512
  // at one token (one K slice, no memset) and 8192 x 512 at 300 tokens (128 tiles, no K split).
  for (auto [M, N] : std::vector<std::pair<int64_t, int64_t>>{{1, 28672}, {300, 8192}}) {
    const GpuCase c{ops::QScaleKind::LowRank, 4, 28, N, 512, ActType::F16};
    std::mt19937 rng(uint32_t(370 + M));
    HostWeight h = random_weight(c, rng, true);
    const GpuQWeight g = GpuQWeight::upload(h.w, c.act);
    cudaStream_t stream;
    LORDS_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    QmmWorkspace ws;
    constexpr int kRounds = 4;
    std::vector<std::vector<float>> xs(kRounds);
    std::vector<DeviceBuffer<float>> xf;
    std::vector<DeviceBuffer<float>> ys;
    for (int i = 0; i < kRounds; ++i) {
      random_x(M, c.K, c.act, rng, xs[size_t(i)]);  // fp16-exact values, sent as fp32
      xf.emplace_back(xs[size_t(i)]);
      ys.emplace_back(static_cast<size_t>(M * N));
    }
    DeviceBuffer<__half> X(static_cast<size_t>(M * c.K));
    for (int i = 0; i < kRounds; ++i) {
      convert_f32_to_f16(X.data(), xf[size_t(i)].data(), M * c.K, stream);
      qmatmul(ys[size_t(i)].data(), X.data(), M, g, stream, &ws, QmmPath::Fused);
    }
    LORDS_CUDA_CHECK(cudaStreamSynchronize(stream));
    LORDS_CUDA_CHECK(cudaStreamDestroy(stream));
    for (int i = 0; i < kRounds; ++i) {
      std::vector<float> ref(static_cast<size_t>(M * N));
      ops::ref::qmatmul(ref.data(), xs[size_t(i)].data(), M, h.w);
      const std::vector<double> ref64(ref.begin(), ref.end());
      EXPECT_LT(test::rel_err(ys[size_t(i)].to_host(), ref64), kTolF16) << "M " << M << " round " << i;
    }
  }
}

TEST(QmatmulGpu, AwkwardShapes) {
  LORDS_REQUIRE_GPU();
  uint32_t seed = 300;
  // K not a multiple of 8 takes the scalar X loads; N = 1 and N = 17 leave most of a row tile empty.
  for (auto [N, K] : std::vector<std::pair<int64_t, int64_t>>{{1, 64}, {17, 200}, {48, 37}, {257, 130}})
    for (int64_t M : {1, 3, 17, 65}) {
      check_case({ops::QScaleKind::LowRank, 4, 5, N, K, ActType::F16}, M, QmmPath::Fused, seed++);
      check_case({ops::QScaleKind::Block, 4, 16, N, K, ActType::F16}, M, QmmPath::Fused, seed++);
    }
}

TEST(QmatmulGpu, DequantGemmPathMatchesReference) {
  LORDS_REQUIRE_GPU();
  uint32_t seed = 400;
  for (ActType act : {ActType::F16, ActType::BF16})
    for (int bits : {3, 4}) {
      check_case({ops::QScaleKind::LowRank, bits, 28, 4200, 1000, act}, 600, QmmPath::DequantGemm, seed++);
      check_case({ops::QScaleKind::Block, bits, 128, 300, 576, act}, 33, QmmPath::DequantGemm, seed++);
    }
}

TEST(QmatmulGpu, AutoPathAgreesWithFused) {
  LORDS_REQUIRE_GPU();
  check_case({ops::QScaleKind::LowRank, 4, 16, 512, 512, ActType::F16}, 700, QmmPath::Auto, 500);
  check_case({ops::QScaleKind::LowRank, 4, 16, 512, 512, ActType::F16}, 700, QmmPath::Fused, 500);
}

TEST(QmatmulGpu, DequantizeMatchesHostReconstruction) {
  LORDS_REQUIRE_GPU();
  std::mt19937 rng(600);
  // K = 200 writes 16-byte row segments but the last group's; K = 37 only element by element.
  for (int64_t K : {200, 37})
  for (auto kind : {ops::QScaleKind::LowRank, ops::QScaleKind::Block})
    for (int bits : {2, 3, 4}) {
      const GpuCase c{kind, bits, kind == ops::QScaleKind::LowRank ? 40 : 64, 70, K, ActType::F16};
      HostWeight h = random_weight(c, rng);
      std::vector<uint8_t> codes(static_cast<size_t>(c.N * c.K));
      quant::unpack_codes(h.packed.data(), c.N, c.K, bits, codes.data());
      const GpuQWeight g = GpuQWeight::upload(h.w, ActType::F16);
      const int64_t n0 = 16, rows = 45;  // a slab that ends mid row tile
      DeviceBuffer<__half> W(static_cast<size_t>(rows * c.K));
      LORDS_CUDA_CHECK(cudaMemset(W.data(), 0xFF, W.bytes()));
      dequantize(W.data(), g, n0, rows, nullptr);
      LORDS_CUDA_CHECK(cudaDeviceSynchronize());
      const auto w = W.to_host();
      std::vector<float> got(w.size());
      std::vector<double> want(w.size());
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t k = 0; k < c.K; ++k) {
          const int64_t n = n0 + i;
          double s = 0;
          if (kind == ops::QScaleKind::LowRank)
            for (int64_t j = 0; j < c.rg; ++j) s += double(h.B[n * c.rg + j]) * h.A[j * c.K + k];
          else
            s = h.scales[n * ((c.K + c.rg - 1) / c.rg) + k / c.rg];
          want[i * c.K + k] = h.levels[codes[n * c.K + k]] * s;
          got[i * c.K + k] = __half2float(w[i * c.K + k]);
        }
      EXPECT_LT(test::rel_err(got, want), kTolF16) << "bits " << bits;
    }
}

TEST(QmatmulGpu, RejectsRankAboveKernelLimit) {
  GpuCase c{ops::QScaleKind::LowRank, 4, 65, 16, 64, ActType::F16};
  std::mt19937 rng(1);
  HostWeight h = random_weight(c, rng);
  if (!gpu_available()) GTEST_SKIP() << "no CUDA GPU here";
  EXPECT_THROW(GpuQWeight::upload(h.w, ActType::F16), Error);
}

}  // namespace
}  // namespace lords::cuda
