// GpuLinear: upload of a host Linear in one of three forms, and its forward (see gpu_linear.h).
#include "lords/runtime/gpu/gpu_linear.h"

#include <algorithm>
#include <vector>

#include "lords/core/dtype.h"
#include "lords/core/error.h"
#include "lords/cuda/ops/add.h"
#include "lords/cuda/ops/matmul.h"
#include "lords/quant/blockwise.h"
#include "lords/quant/pack.h"

namespace lords::runtime {
namespace {

std::vector<uint16_t> to_f16(const std::vector<float>& w) {
  std::vector<uint16_t> h(w.size());
  const auto n = static_cast<int64_t>(w.size());
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) h[static_cast<size_t>(i)] = f32_to_fp16(w[static_cast<size_t>(i)]);
  return h;
}

// W_hat (N, K) as fp16, by the definition of ops::ref::qmatmul: level[Q[n,k]] * S[n,k], with the low-rank
// S[n,k] summed in fp32 in order j = 0..r-1 (or the block scale).
std::vector<uint16_t> dequantize_f16(const ops::QWeight& w) {
  const int64_t N = w.N, K = w.K, row_bytes = quant::packed_row_bytes(K, w.bits);
  std::vector<uint16_t> out(static_cast<size_t>(N * K));
#pragma omp parallel
  {
    std::vector<uint8_t> codes(static_cast<size_t>(K));
    std::vector<float> s(static_cast<size_t>(K));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      quant::unpack_codes(w.codes + n * row_bytes, 1, K, w.bits, codes.data());
      if (w.kind == ops::QScaleKind::LowRank) {
        std::fill(s.begin(), s.end(), 0.0f);
        for (int64_t j = 0; j < w.r; ++j) {
          const float b = w.B[n * w.r + j];
          const float* a = w.A + j * K;
          for (int64_t k = 0; k < K; ++k) s[static_cast<size_t>(k)] += b * a[k];
        }
      } else {
        const float* row = w.scales + n * quant::num_blocks(K, w.G);
        for (int64_t k = 0; k < K; ++k) s[static_cast<size_t>(k)] = row[k / w.G];
      }
      for (int64_t k = 0; k < K; ++k)
        out[static_cast<size_t>(n * K + k)] =
            f32_to_fp16(w.levels[codes[static_cast<size_t>(k)]] * s[static_cast<size_t>(k)]);
    }
  }
  return out;
}

}  // namespace

GpuLinear GpuLinear::upload(const Linear& host, const std::string& name) {
  GpuLinear g;
  g.N_ = host.N();
  g.K_ = host.K();
  if (host.bias()) g.bias_ = cuda::DeviceBuffer<float>(*host.bias());
  if (!host.is_quantized()) {
    LORDS_ASSERT(host.dense_weight() != nullptr);
    g.kind_ = Kind::Dense;
    g.W_ = cuda::DeviceBuffer<uint16_t>(to_f16(host.dense_weight()->data));
    return g;
  }
  const ops::QWeight w = host.quantized_weight();
  try {
    g.q_ = cuda::GpuQWeight::upload(w, cuda::ActType::F16);
    g.kind_ = Kind::Quantized;
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::Unsupported) throw Error(e.kind(), fmt::format("[gpu] {}: {}", name, e.what()));
    g.kind_ = Kind::Dequantized;
    g.W_ = cuda::DeviceBuffer<uint16_t>(dequantize_f16(w));
  }
  return g;
}

void GpuLinear::forward(float* Y, const __half* X, int64_t M, const cuda::BlasHandles& blas,
                        cuda::QmmWorkspace* qmm_ws) const {
  const float* bias = bias_.empty() ? nullptr : bias_.data();
  if (kind_ == Kind::Quantized) {
    cuda::qmatmul(Y, X, M, *q_, blas.stream(), qmm_ws);
    if (bias != nullptr) cuda::add_bias(Y, bias, M, N_, blas.stream());
    return;
  }
  cuda::matmul_f16(Y, X, reinterpret_cast<const __half*>(W_.data()), bias, M, N_, K_, blas);
}

}  // namespace lords::runtime
