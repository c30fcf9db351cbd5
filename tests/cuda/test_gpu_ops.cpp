// The runtime's GPU ops (src/lords/cuda/ops/) against the ops::ref implementations on fresh seeded
// inputs: embedding, RMSNorm, RoPE, causal GQA attention (decode and prefill on top of a cache, several
// key tiles, GQA 1/3/4, head dims 64/80/128), SiLU·mul, residual and bias adds, fp32 -> fp16, and the
// cuBLAS fp16 linear. Sizes are odd (T = 1, 3, 17) so tails are exercised; every output has NaN
// sentinel bands before and after it in device memory that must come back untouched.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gpu_test_util.h"
#include "lords/core/dtype.h"
#include "lords/cuda/blas_handle.h"
#include "lords/cuda/device_buffer.h"
#include "lords/cuda/ops/add.h"
#include "lords/cuda/ops/attention.h"
#include "lords/cuda/ops/convert.h"
#include "lords/cuda/ops/embedding.h"
#include "lords/cuda/ops/matmul.h"
#include "lords/cuda/ops/rmsnorm.h"
#include "lords/cuda/ops/rope.h"
#include "lords/cuda/ops/silu_mul.h"
#include "lords/ops/attention.h"
#include "lords/ops/embedding.h"
#include "lords/ops/matmul.h"
#include "lords/ops/rmsnorm.h"
#include "lords/ops/rope.h"
#include "lords/ops/silu_mul.h"

using namespace lords;

namespace {

// Tolerances, as max |gpu - ref| / max |ref| over the output unless stated (ref accumulates in fp64):
// fp32 ops whose only difference from ref is fp32 summation order / fp32 rounding of one product:
// rmsnorm, rope, silu (|err| ~1e-7 relative).
constexpr double kFp32Tol = 1e-5;
// Attention: fp32 dot products, expf (<= 2 ulp) and the online softmax's rescaling; the output is a
// convex combination of value rows, so errors are relative to max |v| (the cpu kernel measures ~1e-7).
constexpr double kAttentionTol = 1e-5;
// The linear's errors are relative to the natural size of one output, sqrt(K) rms(X) rms(W) (a max
// |Y| of one small, cancelling dot product would make the bound a coin toss).
// cuBLAS on fp16 inputs that are exactly representable: products are exact, fp32 accumulation only.
constexpr double kGemmExactInputTol = 1e-4;
// cuBLAS on fp32 inputs rounded to fp16 (<= 2^-11 relative each, rms ~4e-4 per product): what the
// model's linears carry.
constexpr double kGemmF16Tol = 2e-3;

std::vector<float> random_vec(size_t n, uint32_t seed, float sd = 1.0f) {
  std::mt19937 rng(seed);
  return test::gpu_random_vec(n, rng, sd);
}

double max_rel(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    worst = std::max(worst, std::abs(double(got[i]) - want[i]));
    scale = std::max(scale, std::abs(double(want[i])));
  }
  return worst / std::max(scale, 1e-30);
}

// A device output of n floats between two bands of a NaN sentinel no kernel produces.
class DeviceOut {
 public:
  static constexpr size_t kGuard = 64;
  static constexpr uint32_t kSentinelBits = 0x7fc0dead;

  explicit DeviceOut(size_t n) : n_(n), buf_(n + 2 * kGuard) {
    float s;
    std::memcpy(&s, &kSentinelBits, 4);
    const std::vector<float> fill(n + 2 * kGuard, s);
    buf_.upload(fill.data(), fill.size());
  }
  float* data() { return buf_.data() + kGuard; }
  // Sets the output itself (for in-place ops).
  void set(const std::vector<float>& v) { buf_.upload(v.data(), v.size(), kGuard); }
  // Downloads the output (synchronizing) after checking both sentinel bands.
  std::vector<float> values() const {
    const std::vector<float> all = buf_.to_host();
    for (size_t i = 0; i < kGuard; ++i) {
      uint32_t a, b;
      std::memcpy(&a, &all[i], 4);
      std::memcpy(&b, &all[all.size() - 1 - i], 4);
      EXPECT_EQ(a, kSentinelBits) << "write before the output";
      EXPECT_EQ(b, kSentinelBits) << "write after the output";
    }
    return {all.begin() + kGuard, all.begin() + static_cast<std::ptrdiff_t>(kGuard + n_)};
  }

 private:
  size_t n_;
  cuda::DeviceBuffer<float> buf_;
};

TEST(GpuOps, EmbeddingGathersRowsExactly) {
  LORDS_REQUIRE_GPU();
  const int64_t V = 37, D = 83;
  const std::vector<float> table = random_vec(V * D, 1);
  cuda::DeviceBuffer<float> d_table(table);
  for (int64_t T : {1, 3, 17}) {
    std::vector<int32_t> ids(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) ids[static_cast<size_t>(t)] = static_cast<int32_t>((t * 13 + 5) % V);
    ids.back() = static_cast<int32_t>(V - 1);
    cuda::DeviceBuffer<int32_t> d_ids(ids);
    DeviceOut out(static_cast<size_t>(T * D));
    cuda::embedding(out.data(), d_table.data(), d_ids.data(), T, V, D, nullptr);
    std::vector<float> want(static_cast<size_t>(T * D));
    ops::ref::embedding(want.data(), table.data(), ids.data(), T, V, D);
    EXPECT_EQ(out.values(), want) << "T=" << T;
  }
}

TEST(GpuOps, RmsNormMatchesRef) {
  LORDS_REQUIRE_GPU();
  for (int64_t D : {64, 83, 576, 4096})
    for (int64_t M : {1, 3, 17}) {
      const std::vector<float> x = random_vec(M * D, static_cast<uint32_t>(D + M), 2.0f);
      std::vector<float> w = random_vec(D, 7, 0.1f);
      for (float& v : w) v += 1.0f;
      cuda::DeviceBuffer<float> d_x(x), d_w(w);
      DeviceOut y(static_cast<size_t>(M * D));
      cuda::rmsnorm(y.data(), d_x.data(), d_w.data(), M, D, 1e-5f, nullptr);
      std::vector<float> want(x.size());
      ops::ref::rmsnorm(want.data(), x.data(), w.data(), M, D, 1e-5f);
      EXPECT_LE(max_rel(y.values(), want), kFp32Tol) << "M=" << M << " D=" << D;
      // In place (y == x), as the op allows.
      DeviceOut inplace(static_cast<size_t>(M * D));
      inplace.set(x);
      cuda::rmsnorm(inplace.data(), inplace.data(), d_w.data(), M, D, 1e-5f, nullptr);
      EXPECT_LE(max_rel(inplace.values(), want), kFp32Tol) << "in place, M=" << M << " D=" << D;
    }
}

TEST(GpuOps, RopeMatchesRefAtEveryPosition) {
  LORDS_REQUIRE_GPU();
  ops::RopeScaling llama3;
  llama3.kind = ops::RopeScalingKind::Llama3;
  llama3.factor = 8.0;
  llama3.original_max_position_embeddings = 64;
  struct Case {
    int64_t T, H, Dh, p0;
    double theta;
    ops::RopeScaling scaling;
  };
  const std::vector<Case> cases = {{1, 1, 64, 0, 10000.0, {}},     {3, 3, 64, 5, 10000.0, {}},
                                   {17, 2, 80, 40, 1e6, {}},       {1, 9, 128, 8000, 500000.0, llama3},
                                   {17, 4, 128, 3000, 5e5, llama3}};
  for (const Case& c : cases) {
    std::vector<float> inv_freq(static_cast<size_t>(c.Dh / 2));
    ops::rope_inv_freq(inv_freq.data(), c.Dh, c.theta, c.scaling);
    const std::vector<float> x = random_vec(c.T * c.H * c.Dh, static_cast<uint32_t>(c.T * 31 + c.Dh));
    std::vector<int64_t> pos(static_cast<size_t>(c.T));
    for (int64_t t = 0; t < c.T; ++t) pos[static_cast<size_t>(t)] = c.p0 + t;
    cuda::DeviceBuffer<float> d_freq(inv_freq);
    DeviceOut d_x(x.size());
    d_x.set(x);
    cuda::rope(d_x.data(), c.p0, d_freq.data(), c.T, c.H, c.Dh, nullptr);
    std::vector<float> want = x;
    ops::ref::rope(want.data(), pos.data(), inv_freq.data(), c.T, c.H, c.Dh);
    EXPECT_LE(max_rel(d_x.values(), want), kFp32Tol) << "T=" << c.T << " H=" << c.H << " Dh=" << c.Dh << " p0=" << c.p0;
  }
}

TEST(GpuOps, CausalGqaAttentionMatchesRef) {
  LORDS_REQUIRE_GPU();
  // {T, p0, H, Hkv, Dh}: decode (T = 1) and prefill (T > 1), on an empty cache and on top of one,
  // contexts across several 1024-key tiles, GQA groups of 1, 2, 3 and 4.
  const std::vector<ops::AttentionShape> shapes = {{1, 0, 4, 2, 64},    {3, 5, 6, 2, 64},     {17, 0, 8, 8, 64},
                                                   {17, 40, 12, 4, 80}, {1, 1500, 4, 1, 128}, {5, 2100, 3, 3, 64},
                                                   {3, 1022, 9, 3, 64}};
  for (const ops::AttentionShape& s : shapes) {
    const int64_t L_max = s.p0 + s.T + 3, row = s.Hkv * s.Dh;
    const auto seed = static_cast<uint32_t>(s.T * 1000 + s.p0);
    const std::vector<float> q = random_vec(s.T * s.H * s.Dh, seed);
    std::vector<float> k = random_vec(L_max * row, seed + 1), v = random_vec(L_max * row, seed + 2);
    // Rows past p0 + T are NaN: reading them (a causality bug) poisons the output.
    for (int64_t i = (s.p0 + s.T) * row; i < L_max * row; ++i)
      k[static_cast<size_t>(i)] = v[static_cast<size_t>(i)] = std::numeric_limits<float>::quiet_NaN();
    cuda::DeviceBuffer<float> d_q(q), d_k(k), d_v(v);
    DeviceOut out(q.size());
    cuda::attention(out.data(), d_q.data(), d_k.data(), d_v.data(), s, nullptr);
    std::vector<float> want(q.size());
    ops::ref::attention(want.data(), q.data(), k.data(), v.data(), s);
    // Relative to max |v| over the rows that are read.
    double max_v = 0;
    for (int64_t i = 0; i < (s.p0 + s.T) * row; ++i)
      max_v = std::max(max_v, double(std::abs(v[static_cast<size_t>(i)])));
    const std::vector<float> got = out.values();
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(double(got[i]) - want[i]));
    EXPECT_LE(worst / max_v, kAttentionTol)
        << "T=" << s.T << " p0=" << s.p0 << " H=" << s.H << " Hkv=" << s.Hkv << " Dh=" << s.Dh;
  }
}

TEST(GpuOps, SiluMulMatchesRefAndMayAliasGate) {
  LORDS_REQUIRE_GPU();
  for (int64_t n : {1, 3, 17, 1000003}) {
    const std::vector<float> gate = random_vec(n, 11, 4.0f), up = random_vec(n, 12);
    cuda::DeviceBuffer<float> d_up(up);
    DeviceOut out(static_cast<size_t>(n));
    out.set(gate);
    cuda::silu_mul(out.data(), out.data(), d_up.data(), n, nullptr);  // out aliases gate
    std::vector<float> want(static_cast<size_t>(n));
    ops::ref::silu_mul(want.data(), gate.data(), up.data(), n);
    EXPECT_LE(max_rel(out.values(), want), kFp32Tol) << "n=" << n;
  }
}

TEST(GpuOps, ResidualAndBiasAddsAreExact) {
  LORDS_REQUIRE_GPU();
  for (int64_t M : {1, 3, 17}) {
    const int64_t N = 83;
    const std::vector<float> x = random_vec(M * N, 21), y = random_vec(M * N, 22), bias = random_vec(N, 23);
    cuda::DeviceBuffer<float> d_y(y), d_bias(bias);
    DeviceOut d_x(x.size());
    d_x.set(x);
    cuda::add_inplace(d_x.data(), d_y.data(), M * N, nullptr);
    cuda::add_bias(d_x.data(), d_bias.data(), M, N, nullptr);
    std::vector<float> want = x;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        const size_t i = static_cast<size_t>(m * N + n);
        want[i] = (want[i] + y[i]) + bias[static_cast<size_t>(n)];
      }
    EXPECT_EQ(d_x.values(), want) << "M=" << M;
  }
}

TEST(GpuOps, F32ToF16RoundsLikeTheHostConversion) {
  LORDS_REQUIRE_GPU();
  std::vector<float> x = random_vec(4099, 31, 3.0f);
  // Round-to-nearest-even ties, overflow to inf, subnormals, signed zero.
  const std::vector<float> special = {0.0f, -0.0f, 65504.0f, 65519.0f, 65520.0f, -1e6f, 1e-5f, -3e-7f, 6e-8f, 2.98e-8f,
                                      1.0f + 1.0f / 2048.0f, 1.0f + 3.0f / 2048.0f, INFINITY, -INFINITY};
  x.insert(x.end(), special.begin(), special.end());
  cuda::DeviceBuffer<float> d_x(x);
  cuda::DeviceBuffer<uint16_t> d_h(x.size());
  cuda::convert_f32_to_f16(reinterpret_cast<__half*>(d_h.data()), d_x.data(), static_cast<int64_t>(x.size()), nullptr);
  const std::vector<uint16_t> got = d_h.to_host();
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(got[i], f32_to_fp16(x[i])) << "x = " << x[i];
}

// Y (M, N) = X W^T + bias in fp64 on the host.
std::vector<float> matmul_ref(const std::vector<float>& X, const std::vector<float>& W, const std::vector<float>* bias,
                              int64_t M, int64_t N, int64_t K) {
  std::vector<float> Y(static_cast<size_t>(M * N));
  ops::ref::matmul(Y.data(), X.data(), W.data(), bias ? bias->data() : nullptr, M, N, K);
  return Y;
}

double rms(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += double(x) * x;
  return std::sqrt(s / static_cast<double>(v.size()));
}

// max |got - want| / (sqrt(K) rms(X) rms(W))
double gemm_err(const std::vector<float>& got, const std::vector<float>& want, const std::vector<float>& X,
                const std::vector<float>& W, int64_t K) {
  EXPECT_EQ(got.size(), want.size());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    worst = std::max(worst, std::abs(double(got[i]) - want[i]));
  }
  return worst / (std::sqrt(static_cast<double>(K)) * rms(X) * rms(W));
}

std::vector<uint16_t> to_f16(const std::vector<float>& v) {
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = f32_to_fp16(v[i]);
  return h;
}
std::vector<float> f16_round(const std::vector<float>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = fp16_to_f32(f32_to_fp16(v[i]));
  return r;
}

TEST(GpuOps, DenseF16MatmulMatchesRef) {
  LORDS_REQUIRE_GPU();
  cuda::BlasHandles blas(nullptr);
  for (int64_t K : {64, 83, 1000})
    for (int64_t N : {1, 65, 257})
      for (int64_t M : {1, 3, 17}) {
        const auto seed = static_cast<uint32_t>(K * 7 + N * 3 + M);
        const std::vector<float> X = random_vec(M * K, seed), W = random_vec(N * K, seed + 1, 0.05f),
                                 bias = random_vec(N, seed + 2);
        cuda::DeviceBuffer<uint16_t> d_X(to_f16(X)), d_W(to_f16(W));
        cuda::DeviceBuffer<float> d_bias(bias);
        const auto* x16 = reinterpret_cast<const __half*>(d_X.data());
        const auto* w16 = reinterpret_cast<const __half*>(d_W.data());
        DeviceOut Y(static_cast<size_t>(M * N)), Yb(static_cast<size_t>(M * N));
        cuda::matmul_f16(Y.data(), x16, w16, nullptr, M, N, K, blas);
        cuda::matmul_f16(Yb.data(), x16, w16, d_bias.data(), M, N, K, blas);
        const std::vector<float> got = Y.values(), got_b = Yb.values();
        // Against the same fp16-rounded inputs: fp32 accumulation is the only difference.
        const std::vector<float> Xr = f16_round(X), Wr = f16_round(W);
        EXPECT_LE(gemm_err(got, matmul_ref(Xr, Wr, nullptr, M, N, K), X, W, K), kGemmExactInputTol)
            << "M=" << M << " N=" << N << " K=" << K;
        EXPECT_LE(gemm_err(got_b, matmul_ref(Xr, Wr, &bias, M, N, K), X, W, K), kGemmExactInputTol)
            << "with bias, M=" << M << " N=" << N << " K=" << K;
        // Against the fp32 inputs: the fp16 rounding the model's linears carry.
        EXPECT_LE(gemm_err(got, matmul_ref(X, W, nullptr, M, N, K), X, W, K), kGemmF16Tol)
            << "vs fp32 inputs, M=" << M << " N=" << N << " K=" << K;
      }
}

}  // namespace
