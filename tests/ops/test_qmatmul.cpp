// qmatmul conformance: ref against the exact semantics (quant::unpack_codes + dequantize_lords /
// dequantize_blockwise + a naive fp64 matmul), and cpu against ref, over M (decode and prefill
// paths), K at and off multiples of 8/16/256 (vector, walk step, prefill tile), N with partial row
// groups and tiles, bits 2/3/4, ranks 1..64 and block sizes including K % G != 0 and G % 8 != 0. Y
// is NaN-filled and framed by NaN guard bands that must come back untouched. Integer-valued inputs
// check cpu == ref bit for bit.
#include <cblas.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lords/core/error.h"
#include "lords/ops/qmatmul.h"
#include "lords/quant/blockwise.h"
#include "lords/quant/codebook.h"
#include "lords/quant/lords_solver.h"
#include "lords/quant/pack.h"

namespace lords::ops {
namespace {

constexpr double kEps32 = std::numeric_limits<float>::epsilon();
// cpu vs ref, relative to sum_k |w x|: fp32 accumulation of K random-sign terms errs like eps *
// sqrt(K) (probabilistic bound, Higham & Mary 2019); 2.5e-7 is ~2 eps per sqrt(K), ~10x the worst
// seen here.
constexpr double kCpuDotTolPerSqrtK = 2.5e-7;
// Scale rounding: a fp32 sum of r products errs by at most gamma_r ~ r eps/2 of sum_j |B A| (ref
// and the direct check sum in different orders), so (r + 1) eps covers it plus the final rounding
// of y to fp32.
constexpr double kScaleTolPerTerm = kEps32;
constexpr int64_t kGuard = 64;                   // floats of NaN sentinel on each side of Y
constexpr uint32_t kSentinelBits = 0x7FC0DEADu;  // a quiet NaN with a payload no kernel writes

struct Case {
  QScaleKind kind;
  int64_t M, N, K;
  int bits;
  int64_t rg;  // rank r (LowRank) or block size G (Block)
};

std::string case_name(const Case& c) {
  return std::string(c.kind == QScaleKind::LowRank ? "lords_r" : "block_G") + std::to_string(c.rg) +
         "_b" + std::to_string(c.bits) + "_M" + std::to_string(c.M) + "_N" + std::to_string(c.N) +
         "_K" + std::to_string(c.K);
}

// Seeded inputs of one case plus the QWeight view of them.
struct Data {
  Case c;
  std::vector<uint8_t> codes, packed;  // (N, K) and (N, packed_row_bytes)
  std::vector<float> levels, B, A, scales, X;
  QWeight w;
};

enum class Values { Random, SmallIntegers };

Data make_data(const Case& c, uint32_t seed, Values values = Values::Random) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> small(-3, 3);
  auto draw = [&](std::vector<float>& v, int64_t n) {
    v.resize(static_cast<size_t>(n));
    for (float& x : v) x = values == Values::Random ? normal(rng) : static_cast<float>(small(rng));
  };
  Data d;
  d.c = c;
  const int L = 1 << c.bits;
  d.levels.resize(static_cast<size_t>(L));
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  for (int i = 0; i < L; ++i)
    d.levels[i] = values == Values::Random ? unit(rng) : static_cast<float>(i - L / 2);
  std::sort(d.levels.begin(), d.levels.end());
  std::uniform_int_distribution<int> code(0, L - 1);
  d.codes.resize(static_cast<size_t>(c.N * c.K));
  for (uint8_t& q : d.codes) q = static_cast<uint8_t>(code(rng));
  d.packed = quant::pack_codes(d.codes.data(), c.N, c.K, c.bits);
  draw(d.X, c.M * c.K);
  d.w.kind = c.kind;
  d.w.N = c.N;
  d.w.K = c.K;
  d.w.bits = c.bits;
  d.w.codes = d.packed.data();
  d.w.levels = d.levels.data();
  if (c.kind == QScaleKind::LowRank) {
    draw(d.B, c.N * c.rg);  // signed B and A: S = B A cancels, the hard case for the scale rounding
    draw(d.A, c.rg * c.K);
    d.w.r = c.rg;
    d.w.B = d.B.data();
    d.w.A = d.A.data();
  } else {
    std::uniform_real_distribution<float> absmax(0.01f, 2.0f);
    d.scales.resize(static_cast<size_t>(c.N * quant::num_blocks(c.K, c.rg)));
    for (float& s : d.scales)
      s = values == Values::Random ? absmax(rng) : static_cast<float>(1 + code(rng) % 3);
    d.w.G = c.rg;
    d.w.scales = d.scales.data();
  }
  return d;
}

// The exact semantics through the quant library: W_hat materialized, then Y in fp64.
std::vector<double> direct(const Data& d) {
  const Case& c = d.c;
  std::vector<uint8_t> codes(static_cast<size_t>(c.N * c.K));
  quant::unpack_codes(d.packed.data(), c.N, c.K, c.bits, codes.data());
  const quant::Codebook cb = quant::codebook_from_levels(quant::CodebookKind::NF, c.bits, d.levels);
  std::vector<float> W(codes.size());
  if (c.kind == QScaleKind::LowRank) {
    quant::LowRankScale s;
    s.N = c.N;
    s.K = c.K;
    s.r = c.rg;
    s.B = d.B;
    s.A = d.A;
    quant::dequantize_lords(s, codes.data(), cb, W.data());
  } else {
    quant::BlockwiseQuant q;
    q.N = c.N;
    q.K = c.K;
    q.G = c.rg;
    q.scales = d.scales;
    q.codes = codes;
    quant::dequantize_blockwise(q, cb, W.data());
  }
  std::vector<double> Y(static_cast<size_t>(c.M * c.N), 0.0);
  for (int64_t m = 0; m < c.M; ++m)
    for (int64_t n = 0; n < c.N; ++n) {
      double acc = 0.0;
      for (int64_t k = 0; k < c.K; ++k)
        acc += static_cast<double>(W[n * c.K + k]) * d.X[m * c.K + k];
      Y[m * c.N + n] = acc;
    }
  return Y;
}

// mag[m,n] = sum_k |level| |S|_abs |x|, with |S|_abs = sum_j |B_nj A_jk| (LowRank) or |scale|: the
// size of the terms of each output, which every error bound scales with.
std::vector<double> magnitude(const Data& d) {
  const Case& c = d.c;
  std::vector<double> sabs(static_cast<size_t>(c.N * c.K), 0.0);
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t k = 0; k < c.K; ++k) {
      double s = 0.0;
      if (c.kind == QScaleKind::LowRank) {
        for (int64_t j = 0; j < c.rg; ++j)
          s += std::fabs(static_cast<double>(d.B[n * c.rg + j]) * d.A[j * c.K + k]);
      } else {
        s = std::fabs(d.scales[n * quant::num_blocks(c.K, c.rg) + k / c.rg]);
      }
      sabs[n * c.K + k] = s * std::fabs(d.levels[d.codes[n * c.K + k]]);
    }
  std::vector<double> mag(static_cast<size_t>(c.M * c.N), 0.0);
  for (int64_t m = 0; m < c.M; ++m)
    for (int64_t n = 0; n < c.N; ++n) {
      double acc = 0.0;
      for (int64_t k = 0; k < c.K; ++k) acc += sabs[n * c.K + k] * std::fabs(d.X[m * c.K + k]);
      mag[m * c.N + n] = std::max(acc, 1e-30);
    }
  return mag;
}

// Y with NaN guard bands: run(Y) writes y(); guards_intact() checks both bands bit for bit.
struct GuardedY {
  std::vector<float> buf;
  int64_t size;
  explicit GuardedY(int64_t n) : buf(static_cast<size_t>(n + 2 * kGuard)), size(n) {
    float nan;
    std::memcpy(&nan, &kSentinelBits, sizeof nan);
    std::fill(buf.begin(),
              buf.end(),
              nan);  // the output itself starts as NaN too: every element must be written
  }
  float* y() { return buf.data() + kGuard; }
  bool guards_intact() const {
    for (int64_t i = 0; i < kGuard; ++i)
      for (int64_t at : {i, kGuard + size + i}) {
        uint32_t bits;
        std::memcpy(&bits, &buf[static_cast<size_t>(at)], sizeof bits);
        if (bits != kSentinelBits) return false;
      }
    return true;
  }
};

// Max over outputs of |got - want| / mag, with the worst index (NaN counts as infinitely wrong).
struct Worst {
  double rel = 0;
  int64_t at = -1;
};
template <class T>
Worst worst_error(const float* got, const std::vector<T>& want, const std::vector<double>& mag) {
  Worst w;
  for (size_t i = 0; i < want.size(); ++i) {
    const double e = std::fabs(static_cast<double>(got[i]) - static_cast<double>(want[i])) / mag[i];
    const double rel = std::isnan(e) ? std::numeric_limits<double>::infinity() : e;
    if (rel > w.rel || w.at < 0) w = {rel, static_cast<int64_t>(i)};
  }
  return w;
}

std::vector<Case> conformance_cases() {
  std::vector<Case> cases;
  const int64_t Ms[] = {1, 3, 17, 64}, Ks[] = {64, 100, 576, 1543}, Ns[] = {1, 5, 96};
  const int64_t ranks[] = {1, 3, 16, 64}, Gs[] = {32, 64, 128};
  int i = 0;
  for (int bits : {2, 3, 4})
    for (int64_t K : Ks)
      for (int64_t M : Ms) {  // N, r and G rotate so every value meets every M, K and bit width
        cases.push_back({QScaleKind::LowRank, M, Ns[i % 3], K, bits, ranks[(i / 3 + i) % 4]});
        cases.push_back({QScaleKind::Block, M, Ns[(i + 1) % 3], K, bits, Gs[(i / 2 + i) % 3]});
        ++i;
      }
  // Edges: decode/prefill boundaries (M 8/9 LowRank, 3/4 Block), K below one vector and one walk
  // step, K crossing the 256-wide prefill tile, the 128-wide decode staging and the decode K block
  // (r = 64: 512 columns), N with 1..3 leftover rows and a partial 64-row tile, G not a multiple of
  // 8, G > K, and a SmolLM2-135M projection (576 x 1536, parity rank 3).
  const Case edges[] = {
      {QScaleKind::LowRank, 8, 7, 13, 4, 3},     {QScaleKind::LowRank, 9, 7, 13, 3, 3},
      {QScaleKind::LowRank, 1, 6, 1, 2, 1},      {QScaleKind::LowRank, 2, 3, 7, 3, 2},
      {QScaleKind::LowRank, 5, 130, 300, 4, 5},  {QScaleKind::LowRank, 33, 130, 300, 3, 64},
      {QScaleKind::LowRank, 1, 9, 1100, 4, 64},  {QScaleKind::LowRank, 4, 11, 1029, 2, 40},
      {QScaleKind::LowRank, 1, 576, 1536, 4, 3}, {QScaleKind::LowRank, 17, 576, 1536, 4, 3},
      {QScaleKind::Block, 8, 7, 13, 4, 32},      {QScaleKind::Block, 4, 7, 13, 2, 8},
      {QScaleKind::Block, 1, 5, 100, 4, 20},     {QScaleKind::Block, 20, 5, 100, 3, 20},
      {QScaleKind::Block, 3, 6, 77, 2, 7},       {QScaleKind::Block, 1, 4, 64, 4, 100},
      {QScaleKind::Block, 6, 130, 300, 3, 96},   {QScaleKind::Block, 40, 130, 300, 4, 96},
      {QScaleKind::Block, 1, 576, 1536, 4, 128}, {QScaleKind::Block, 17, 576, 1536, 4, 128},
  };
  cases.insert(cases.end(), std::begin(edges), std::end(edges));
  return cases;
}

class QmatmulConformance : public ::testing::TestWithParam<Case> {};

TEST_P(QmatmulConformance, RefMatchesDirectAndCpuMatchesRef) {
  const Case c = GetParam();
  const Data d =
      make_data(c, static_cast<uint32_t>(c.M * 7919 + c.N * 131 + c.K * 17 + c.bits * 3 + c.rg));
  qmatmul_check(d.w, c.M);
  const std::vector<double> mag = magnitude(d);
  const std::vector<double> want = direct(d);
  const int64_t terms = c.kind == QScaleKind::LowRank ? c.rg : 0;

  GuardedY ref_y(c.M * c.N);
  ref::qmatmul(ref_y.y(), d.X.data(), c.M, d.w);
  EXPECT_TRUE(ref_y.guards_intact()) << "ref wrote outside Y";
  const Worst ref_err = worst_error(ref_y.y(), want, mag);
  const double ref_tol = (static_cast<double>(terms) + 1) * kScaleTolPerTerm;
  EXPECT_LE(ref_err.rel, ref_tol) << "ref vs direct, worst at (m, n) = (" << ref_err.at / c.N
                                  << ", " << ref_err.at % c.N << "): " << ref_y.y()[ref_err.at]
                                  << " vs " << want[static_cast<size_t>(ref_err.at)];

  GuardedY cpu_y(c.M * c.N);
  cpu::qmatmul(cpu_y.y(), d.X.data(), c.M, d.w);
  EXPECT_TRUE(cpu_y.guards_intact()) << "cpu wrote outside Y";
  const std::vector<float> ref_vec(ref_y.y(), ref_y.y() + c.M * c.N);
  const Worst cpu_err = worst_error(cpu_y.y(), ref_vec, mag);
  const double cpu_tol = kCpuDotTolPerSqrtK * std::sqrt(static_cast<double>(c.K)) + 2 * ref_tol;
  EXPECT_LE(cpu_err.rel, cpu_tol) << "cpu vs ref, worst at (m, n) = (" << cpu_err.at / c.N << ", "
                                  << cpu_err.at % c.N << "): " << cpu_y.y()[cpu_err.at] << " vs "
                                  << ref_vec[static_cast<size_t>(cpu_err.at)];
}

INSTANTIATE_TEST_SUITE_P(Ops,
                         QmatmulConformance,
                         ::testing::ValuesIn(conformance_cases()),
                         [](const ::testing::TestParamInfo<Case>& p) {
                           return case_name(p.param);
                         });

// Small-integer levels, scales and activations keep every product and partial sum an exact fp32
// integer
// (|y| < 2^24), so any summation order gives the same bits: cpu == ref exactly, on both paths.
TEST(Qmatmul, IntegerInputsAreBitExact) {
  for (QScaleKind kind : {QScaleKind::LowRank, QScaleKind::Block})
    for (int bits : {2, 3, 4})
      for (int64_t M : {1, 3, 17}) {
        const Case c{kind, M, 37, 1029, bits, kind == QScaleKind::LowRank ? 3 : 64};
        const Data d = make_data(c, static_cast<uint32_t>(bits * 10 + M), Values::SmallIntegers);
        std::vector<float> y_ref(static_cast<size_t>(M * c.N)), y_cpu(y_ref.size());
        ref::qmatmul(y_ref.data(), d.X.data(), M, d.w);
        cpu::qmatmul(y_cpu.data(), d.X.data(), M, d.w);
        for (size_t i = 0; i < y_ref.size(); ++i) {
          ASSERT_EQ(y_ref[i], std::nearbyint(y_ref[i])) << "inputs were meant to give integers";
          ASSERT_EQ(y_cpu[i], y_ref[i])
              << case_name(c) << " at (m, n) = (" << i / c.N << ", " << i % c.N << ")";
        }
      }
}

// Repeated calls give identical bits (the thread partition is fixed by the shape, never by timing).
TEST(Qmatmul, CpuIsDeterministic) {
  for (int64_t M : {1, 40}) {
    const Data d = make_data({QScaleKind::LowRank, M, 130, 700, 4, 16}, 5);
    std::vector<float> a(static_cast<size_t>(M * 130)), b(a.size());
    cpu::qmatmul(a.data(), d.X.data(), M, d.w);
    cpu::qmatmul(b.data(), d.X.data(), M, d.w);
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << "M " << M;
  }
}

// The prefill path runs OpenBLAS single-threaded inside its OpenMP region and must restore the
// caller's thread count afterwards.
TEST(Qmatmul, PrefillRestoresBlasThreads) {
  const int before = openblas_get_num_threads();
  openblas_set_num_threads(2);
  const Data d = make_data({QScaleKind::Block, 32, 130, 300, 4, 64}, 9);
  std::vector<float> y(static_cast<size_t>(32 * 130));
  cpu::qmatmul(y.data(), d.X.data(), 32, d.w);
  EXPECT_EQ(openblas_get_num_threads(), 2);
  openblas_set_num_threads(before);
}

TEST(Qmatmul, CheckRejectsInconsistentWeights) {
  const Data d = make_data({QScaleKind::LowRank, 1, 4, 16, 4, 2}, 1);
  EXPECT_NO_THROW(qmatmul_check(d.w, 1));
  EXPECT_THROW(qmatmul_check(d.w, 0), Error);
  QWeight w = d.w;
  w.bits = 5;
  EXPECT_THROW(qmatmul_check(w, 1), Error);
  w = d.w;
  w.r = 0;
  EXPECT_THROW(qmatmul_check(w, 1), Error);
  w = d.w;
  w.A = nullptr;
  EXPECT_THROW(qmatmul_check(w, 1), Error);
  w = d.w;
  w.kind = QScaleKind::Block;  // no scales, no G
  EXPECT_THROW(qmatmul_check(w, 1), Error);
  w.G = 32;
  EXPECT_THROW(qmatmul_check(w, 1), Error);
}

TEST(Qmatmul, BytesCountCodesAndScales) {
  const Data lr = make_data({QScaleKind::LowRank, 1, 10, 100, 3, 4}, 1);
  EXPECT_EQ(qweight_bytes(lr.w), 10 * 38 + 4 * (10 + 100) * 4);  // 300 bits = 38 bytes per row
  const Data bl = make_data({QScaleKind::Block, 1, 10, 100, 4, 32}, 1);
  EXPECT_EQ(qweight_bytes(bl.w), 10 * 50 + 10 * 4 * 4);
}

}  // namespace
}  // namespace lords::ops
