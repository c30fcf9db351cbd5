#include "lords/runtime/linear.h"

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
    return;
  }
  const ops::QWeight w = quantized_weight();
  if (backend == Backend::Ref) ops::ref::qmatmul(Y, X, M, w);
  else ops::cpu::qmatmul(Y, X, M, w);
  if (bias)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N_; ++n) Y[m * N_ + n] += bias[n];
}

}  // namespace lords::runtime
