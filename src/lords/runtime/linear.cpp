#include "lords/runtime/linear.h"

#include <cblas.h>

#include <cstring>

#include "lords/core/error.h"
#include "lords/ops/matmul.h"
#include "lords/quant/pack.h"

namespace lords::runtime {

Linear Linear::dense(std::shared_ptr<const HostTensor> W, std::optional<std::vector<float>> bias) {
  LORDS_ASSERT(W && W->shape.size() == 2);
  Linear l;
  l.N_ = W->shape[0];
  l.K_ = W->shape[1];
  l.W_ = std::move(W);
  l.set_bias(std::move(bias), "dense linear");
  return l;
}

Linear Linear::quantized(const engine::Checkpoint& ck, const std::string& name,
                         std::optional<std::vector<float>> bias) {
  LORDS_CHECK(ck.is_quantized(name), ErrorKind::Usage, "{}: '{}' is not a quantized layer", ck.weights_path(), name);
  const nlohmann::json& info = ck.layer_table().at(name);
  Linear l;
  l.N_ = info.at("shape").at(0).get<int64_t>();
  l.K_ = info.at("shape").at(1).get<int64_t>();
  Quantized q;
  q.bits = ck.bits();
  q.levels = ck.codebook().levels;
  // The Checkpoint constructor already checked <name>.qcodes is U8 of shape (N, packed_row_bytes).
  const size_t n_bytes = static_cast<size_t>(l.N_ * quant::packed_row_bytes(l.K_, q.bits));
  LORDS_CHECK(ck.index().at(name + ".qcodes").nbytes == n_bytes, ErrorKind::Format, "{}: '{}.qcodes' holds {} bytes, expected {}",
              ck.weights_path(), name, ck.index().at(name + ".qcodes").nbytes, n_bytes);
  const uint8_t* raw = ck.index().raw(name + ".qcodes");
  q.codes.assign(raw, raw + n_bytes);
  if (ck.method() == engine::Method::Lords) {
    q.kind = ops::QScaleKind::LowRank;
    q.r = info.at("rank").get<int64_t>();
    q.B = ck.index().load_f32(name + ".lords_B").data;
    q.A = ck.index().load_f32(name + ".lords_A").data;
  } else {
    q.kind = ops::QScaleKind::Block;
    q.G = info.at("block").get<int64_t>();
    q.scales = ck.index().load_f32(name + ".qscales").data;
  }
  l.quant_ = std::move(q);
  l.set_bias(std::move(bias), name);
  return l;
}

void Linear::set_bias(std::optional<std::vector<float>> bias, const std::string& name) {
  if (bias) {
    LORDS_CHECK(static_cast<int64_t>(bias->size()) == N_, ErrorKind::BadShape,
                "[linear] {}: bias has {} values, expected {}", name, bias->size(), N_);
  }
  bias_ = std::move(bias);
}

void Linear::set_lora(int64_t r, float alpha, std::vector<float> A, std::vector<float> B, const std::string& name) {
  LORDS_CHECK(r >= 1 && alpha > 0, ErrorKind::Usage, "[linear] {}: LoRA rank {} and alpha {} must be positive", name, r,
              alpha);
  LORDS_CHECK(static_cast<int64_t>(A.size()) == r * K_ && static_cast<int64_t>(B.size()) == N_ * r,
              ErrorKind::BadShape, "[linear] {}: LoRA A has {} values, B {}, expected {} ({} x {}) and {} ({} x {})",
              name, A.size(), B.size(), r * K_, r, K_, N_ * r, N_, r);
  lora_ = Lora{r, alpha, std::move(A), std::move(B)};
}

void Linear::add_lora(float* Y, const float* X, int64_t M, Backend backend) const {
  const Lora& l = *lora_;
  const float s = l.alpha / static_cast<float>(l.r);
  std::vector<float> xa(static_cast<size_t>(M * l.r));  // (M, r) X A^T, small: r << N, K
  if (backend == Backend::Ref) {
    // The readable reference: fp64 sums.
    for (int64_t m = 0; m < M; ++m)
      for (int64_t j = 0; j < l.r; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < K_; ++k)
          acc += static_cast<double>(X[m * K_ + k]) * l.A[static_cast<size_t>(j * K_ + k)];
        xa[static_cast<size_t>(m * l.r + j)] = static_cast<float>(acc);
      }
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N_; ++n) {
        double acc = 0;
        for (int64_t j = 0; j < l.r; ++j)
          acc += static_cast<double>(xa[static_cast<size_t>(m * l.r + j)]) * l.B[static_cast<size_t>(n * l.r + j)];
        Y[m * N_ + n] += static_cast<float>(s * acc);
      }
    return;
  }
  // The same two GEMMs as the training forward (train/cpu/lora_linear.cpp).
  const auto i = [](int64_t v) { return static_cast<blasint>(v); };
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, i(M), i(l.r), i(K_), 1.0f, X, i(K_), l.A.data(), i(K_), 0.0f,
              xa.data(), i(l.r));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, i(M), i(N_), i(l.r), s, xa.data(), i(l.r), l.B.data(), i(l.r),
              1.0f, Y, i(N_));
}

ops::QWeight Linear::quantized_weight() const {
  LORDS_ASSERT(quant_);
  const Quantized& q = *quant_;
  ops::QWeight w;
  w.kind = q.kind;
  w.N = N_;
  w.K = K_;
  w.bits = q.bits;
  w.codes = q.codes.data();
  w.levels = q.levels.data();
  w.r = q.r;
  w.B = q.B.data();
  w.A = q.A.data();
  w.G = q.G;
  w.scales = q.scales.data();
  return w;
}

void Linear::forward(float* Y, const float* X, int64_t M, Backend backend) const {
  LORDS_ASSERT(W_ || quant_);
  const float* bias = bias_ ? bias_->data() : nullptr;
  if (!quant_) {
    if (backend == Backend::Ref) ops::ref::matmul(Y, X, W_->data.data(), bias, M, N_, K_);
    else ops::cpu::matmul(Y, X, W_->data.data(), bias, M, N_, K_);
    if (lora_) add_lora(Y, X, M, backend);
    return;
  }
  const ops::QWeight w = quantized_weight();
  if (backend == Backend::Ref) ops::ref::qmatmul(Y, X, M, w);
  else ops::cpu::qmatmul(Y, X, M, w);
  if (lora_) add_lora(Y, X, M, backend);
  if (bias)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N_; ++n) Y[m * N_ + n] += bias[n];
}

}  // namespace lords::runtime
