// GpuTrainEngine (see gpu_train_engine.h): the device mirror of TrainModel's workspace and its layer
// loop (train_model.cpp, whose comments give the math). Everything runs on one stream; the host waits
// only where it reads results (the per-row losses, the gradients, the logits).
#include "lords/train/gpu/gpu_train_engine.h"

#include <algorithm>
#include <vector>

#include "lords/core/error.h"
#include "lords/cuda/blas_handle.h"
#include "lords/cuda/cuda_check.h"
#include "lords/cuda/device.h"
#include "lords/cuda/device_buffer.h"
#include "lords/cuda/ops/add.h"
#include "lords/cuda/ops/embedding.h"
#include "lords/cuda/ops/rmsnorm.h"
#include "lords/cuda/ops/rope.h"
#include "lords/cuda/ops/silu_mul.h"
#include "lords/train/gpu/attention_train.h"
#include "lords/train/gpu/gpu_train_linear.h"
#include "lords/train/gpu/train_kernels.h"

namespace lords::train {

using Buf = cuda::DeviceBuffer<float>;

class GpuTrainEngine {
 public:
  explicit GpuTrainEngine(const TrainModel<float>& m);
  ~GpuTrainEngine() { cudaStreamDestroy(stream_); }

  CrossEntropyResult run(TrainModel<float>& m, const int32_t* tokens, const int32_t* targets, const float* weights,
                         int64_t B, int64_t T, float grad_scale, bool train);
  void logits(TrainModel<float>& m, float* out, const int32_t* tokens, int64_t B, int64_t T);

 private:
  using Model = TrainModel<float>;
  enum Slot { kQ = Model::kQ, kK = Model::kK, kV = Model::kV, kO = Model::kO, kGate = Model::kGate,
              kUp = Model::kUp, kDown = Model::kDown, kSlots = Model::kSlots };
  struct Layer {
    Buf attn_norm, ffn_norm;
    std::array<GpuTrainLinear, kSlots> lin;
  };
  struct Acts {  // LayerActs on the device
    Buf xn1, rstd1, q, k, v, att, lse, h, xn2, rstd2, gate, up, act;
    std::array<GpuLinearCache, kSlots> cache;
  };

  void reserve(const Model& m, int64_t B, int64_t T, bool train);
  // Host parameter values -> device.
  void upload_params(Model& m);
  // Device gradients += into the host's (the device ones are zeroed at the start of each call).
  void add_grads_to_host(Model& m);
  std::vector<GpuTrainLinear*> linears();
  GpuLinearContext ctx(const Model& m) { return {blas_->cublas(), stream_, &scratch_, m.opt_.ste, m.ctx_.qat_phase}; }
  void embed(const Model& m, const int32_t* tokens, int64_t M);
  const float* run_layers(const Model& m, int64_t B, int64_t T, bool train);
  void layer_fwd(const Model& m, int64_t il, const float* x, float* x_out, Acts& a, int64_t B, int64_t T);
  void layer_bwd(const Model& m, int64_t il, const float* x, Acts& a, float* dx, int64_t B, int64_t T);

  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda::BlasHandles> blas_;
  std::shared_ptr<Buf> embed_;  // (V, D), shared with a tied head
  std::vector<Layer> layers_;
  Buf out_norm_, inv_freq_;
  GpuTrainLinear head_;
  GpuLinearScratch scratch_;
  // Workspace (train_model.h's, on the device).
  cuda::DeviceBuffer<int32_t> tokens_, targets_;
  Buf weights_, row_loss_;
  std::vector<Buf> inputs_;
  std::vector<Acts> acts_;
  Buf dx_, dn_, dtmp_, dq_, datt_, delta_, dk_, dv_, dgate_, dup_, dact_;
  Buf xf_, rstd_f_, dxf_, logits_;
  GpuLinearCache head_cache_;
  std::vector<float> staging_;  // host copy of one gradient
};

GpuTrainEngine::GpuTrainEngine(const Model& m) {
  cuda::require_gpu("finetune --device cuda");
  LORDS_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  blas_ = std::make_unique<cuda::BlasHandles>(stream_);
  if (m.opt_.tf32) LORDS_CUBLAS_CHECK(cublasSetMathMode(blas_->cublas(), CUBLAS_TF32_TENSOR_OP_MATH));
  embed_ = std::make_shared<Buf>(*m.embed_);
  layers_.resize(m.layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto& h = m.layers_[i];
    layers_[i].attn_norm = Buf(h.attn_norm);
    layers_[i].ffn_norm = Buf(h.ffn_norm);
    for (int s = 0; s < kSlots; ++s) layers_[i].lin[s] = GpuTrainLinear::upload(h.lin[s]);
  }
  out_norm_ = Buf(m.out_norm_);
  inv_freq_ = Buf(m.inv_freq_);
  const bool tied = m.head_.dense_weight() == m.embed_.get();
  head_ = GpuTrainLinear::upload(m.head_, tied ? std::shared_ptr<const Buf>(embed_) : nullptr);
}

std::vector<GpuTrainLinear*> GpuTrainEngine::linears() {
  std::vector<GpuTrainLinear*> out;
  for (Layer& l : layers_)
    for (GpuTrainLinear& x : l.lin) out.push_back(&x);
  out.push_back(&head_);
  return out;
}

void GpuTrainEngine::upload_params(Model& m) {
  const std::vector<TrainableLinear<float>*> host = m.linears();
  const std::vector<GpuTrainLinear*> dev = linears();
  for (size_t i = 0; i < dev.size(); ++i) {
    const std::vector<ParamRef<float>> hp = host[i]->params();
    const std::vector<GpuParam> dp = dev[i]->params();
    LORDS_ASSERT(hp.size() == dp.size());
    for (size_t j = 0; j < dp.size(); ++j) {
      LORDS_ASSERT(hp[j].size == dp[j].size);
      LORDS_CUDA_CHECK(cudaMemcpyAsync(dp[j].value, hp[j].value, static_cast<size_t>(dp[j].size) * sizeof(float),
                                       cudaMemcpyHostToDevice, stream_));
    }
    dev[i]->zero_grad(stream_);
  }
}

void GpuTrainEngine::add_grads_to_host(Model& m) {
  const std::vector<TrainableLinear<float>*> host = m.linears();
  const std::vector<GpuTrainLinear*> dev = linears();
  LORDS_CUDA_CHECK(cudaStreamSynchronize(stream_));
  for (size_t i = 0; i < dev.size(); ++i) {
    const std::vector<ParamRef<float>> hp = host[i]->params();
    const std::vector<GpuParam> dp = dev[i]->params();
    for (size_t j = 0; j < dp.size(); ++j) {
      staging_.resize(static_cast<size_t>(dp[j].size));
      LORDS_CUDA_CHECK(cudaMemcpy(staging_.data(), dp[j].grad, staging_.size() * sizeof(float),
                                  cudaMemcpyDeviceToHost));
      float* g = hp[j].grad;
      const int64_t n = dp[j].size;
#pragma omp parallel for simd schedule(static) if (n >= (int64_t{1} << 16))
      for (int64_t k = 0; k < n; ++k) g[k] += staging_[static_cast<size_t>(k)];
    }
  }
}

void GpuTrainEngine::reserve(const Model& m, int64_t B, int64_t T, bool train) {
  const model::ModelConfig& c = m.config_;
  const auto M = static_cast<size_t>(B * T), D = static_cast<size_t>(c.hidden),
             I = static_cast<size_t>(c.intermediate), H = static_cast<size_t>(c.n_head),
             Hq = static_cast<size_t>(c.n_head * c.head_dim), Hk = static_cast<size_t>(c.n_head_kv * c.head_dim);
  const size_t L = static_cast<size_t>(c.n_layer);
  tokens_.reserve(M);
  targets_.reserve(M);
  weights_.reserve(M);
  row_loss_.reserve(M);
  inputs_.resize(L + 1);
  for (size_t i = 0; i < (train ? L + 1 : 2); ++i) inputs_[i].reserve(M * D);
  const bool all_layers = train && m.opt_.recompute == Recompute::Off;
  if (acts_.size() < (all_layers ? L : 1)) acts_.resize(all_layers ? L : 1);
  for (size_t i = 0; i < (all_layers ? L : 1); ++i) {
    Acts& a = acts_[i];
    for (Buf* v : {&a.xn1, &a.h, &a.xn2}) v->reserve(M * D);
    for (Buf* v : {&a.rstd1, &a.rstd2}) v->reserve(M);
    for (Buf* v : {&a.q, &a.att}) v->reserve(M * Hq);
    for (Buf* v : {&a.k, &a.v}) v->reserve(M * Hk);
    a.lse.reserve(M * H);
    for (Buf* v : {&a.gate, &a.up, &a.act}) v->reserve(M * I);
  }
  xf_.reserve(M * D);
  rstd_f_.reserve(M);
  logits_.reserve(std::min(M, static_cast<size_t>(m.opt_.head_rows)) * static_cast<size_t>(c.vocab));
  if (train) {
    for (Buf* v : {&dx_, &dn_, &dtmp_, &dxf_}) v->reserve(M * D);
    for (Buf* v : {&dq_, &datt_}) v->reserve(M * Hq);
    for (Buf* v : {&dk_, &dv_}) v->reserve(M * Hk);
    delta_.reserve(M * H);
    for (Buf* v : {&dgate_, &dup_, &dact_}) v->reserve(M * I);
  }
}

void GpuTrainEngine::embed(const Model& m, const int32_t* tokens, int64_t M) {
  tokens_.upload(tokens, static_cast<size_t>(M), 0, stream_);
  cuda::embedding(inputs_[0].data(), embed_->data(), tokens_.data(), M, m.config_.vocab, m.config_.hidden, stream_);
}

void GpuTrainEngine::layer_fwd(const Model& m, int64_t il, const float* x, float* x_out, Acts& a, int64_t B,
                               int64_t T) {
  Layer& l = layers_[static_cast<size_t>(il)];
  const model::ModelConfig& c = m.config_;
  const int64_t M = B * T, D = c.hidden, I = c.intermediate, H = c.n_head, Hkv = c.n_head_kv, Dh = c.head_dim;
  const auto eps = static_cast<float>(c.rms_eps);
  const GpuLinearContext cx = ctx(m);
  cuda::rmsnorm_fwd(a.xn1.data(), a.rstd1.data(), x, l.attn_norm.data(), M, D, eps, stream_);
  l.lin[kQ].forward(a.q.data(), a.cache[kQ], a.xn1.data(), M, cx);
  l.lin[kK].forward(a.k.data(), a.cache[kK], a.xn1.data(), M, cx);
  l.lin[kV].forward(a.v.data(), a.cache[kV], a.xn1.data(), M, cx);
  cuda::rope_sequences(a.q.data(), B, T, false, inv_freq_.data(), H, Dh, stream_);
  cuda::rope_sequences(a.k.data(), B, T, false, inv_freq_.data(), Hkv, Dh, stream_);
  gpu::attention_fwd(a.att.data(), a.lse.data(), a.q.data(), a.k.data(), a.v.data(), {B, T, H, Hkv, Dh}, stream_);
  l.lin[kO].forward(a.h.data(), a.cache[kO], a.att.data(), M, cx);
  cuda::add_inplace(a.h.data(), x, M * D, stream_);
  cuda::rmsnorm_fwd(a.xn2.data(), a.rstd2.data(), a.h.data(), l.ffn_norm.data(), M, D, eps, stream_);
  l.lin[kGate].forward(a.gate.data(), a.cache[kGate], a.xn2.data(), M, cx);
  l.lin[kUp].forward(a.up.data(), a.cache[kUp], a.xn2.data(), M, cx);
  cuda::silu_mul(a.act.data(), a.gate.data(), a.up.data(), M * I, stream_);
  l.lin[kDown].forward(x_out, a.cache[kDown], a.act.data(), M, cx);
  cuda::add_inplace(x_out, a.h.data(), M * D, stream_);
}

void GpuTrainEngine::layer_bwd(const Model& m, int64_t il, const float* x, Acts& a, float* dx, int64_t B,
                               int64_t T) {
  Layer& l = layers_[static_cast<size_t>(il)];
  const model::ModelConfig& c = m.config_;
  const int64_t M = B * T, D = c.hidden, I = c.intermediate, H = c.n_head, Hkv = c.n_head_kv, Dh = c.head_dim;
  const GpuLinearContext cx = ctx(m);
  float *dn = dn_.data(), *dtmp = dtmp_.data();
  l.lin[kDown].backward(dact_.data(), dx, a.act.data(), a.cache[kDown], M, cx);
  cuda::silu_mul_bwd(dgate_.data(), dup_.data(), dact_.data(), a.gate.data(), a.up.data(), M * I, stream_);
  l.lin[kGate].backward(dn, dgate_.data(), a.xn2.data(), a.cache[kGate], M, cx);
  l.lin[kUp].backward(dtmp, dup_.data(), a.xn2.data(), a.cache[kUp], M, cx);
  cuda::add_inplace(dn, dtmp, M * D, stream_);
  cuda::rmsnorm_bwd(dtmp, dn, a.h.data(), l.ffn_norm.data(), a.rstd2.data(), M, D, stream_);
  cuda::add_inplace(dx, dtmp, M * D, stream_);
  l.lin[kO].backward(datt_.data(), dx, a.att.data(), a.cache[kO], M, cx);
  const AttentionCache<float> ac{a.q.data(), a.k.data(), a.v.data(), a.att.data(), a.lse.data()};
  gpu::attention_bwd(dq_.data(), dk_.data(), dv_.data(), delta_.data(), datt_.data(), ac, {B, T, H, Hkv, Dh},
                     stream_);
  cuda::rope_sequences(dq_.data(), B, T, true, inv_freq_.data(), H, Dh, stream_);
  cuda::rope_sequences(dk_.data(), B, T, true, inv_freq_.data(), Hkv, Dh, stream_);
  l.lin[kQ].backward(dn, dq_.data(), a.xn1.data(), a.cache[kQ], M, cx);
  l.lin[kK].backward(dtmp, dk_.data(), a.xn1.data(), a.cache[kK], M, cx);
  cuda::add_inplace(dn, dtmp, M * D, stream_);
  l.lin[kV].backward(dtmp, dv_.data(), a.xn1.data(), a.cache[kV], M, cx);
  cuda::add_inplace(dn, dtmp, M * D, stream_);
  cuda::rmsnorm_bwd(dtmp, dn, x, l.attn_norm.data(), a.rstd1.data(), M, D, stream_);
  cuda::add_inplace(dx, dtmp, M * D, stream_);
}

const float* GpuTrainEngine::run_layers(const Model& m, int64_t B, int64_t T, bool train) {
  const int64_t L = m.config_.n_layer;
  const bool keep = train && m.opt_.recompute == Recompute::Off;
  for (int64_t il = 0; il < L; ++il) {
    const size_t in = static_cast<size_t>(train ? il : il % 2), out = static_cast<size_t>(train ? il + 1 : (il + 1) % 2);
    layer_fwd(m, il, inputs_[in].data(), inputs_[out].data(), acts_[keep ? static_cast<size_t>(il) : 0], B, T);
  }
  return inputs_[static_cast<size_t>(train ? L : L % 2)].data();
}

CrossEntropyResult GpuTrainEngine::run(Model& m, const int32_t* tokens, const int32_t* targets, const float* weights,
                                       int64_t B, int64_t T, float grad_scale, bool train) {
  const int64_t M = B * T, D = m.config_.hidden, V = m.config_.vocab, L = m.config_.n_layer;
  const double total = counted_weight(targets, weights, M);
  if (train && total == 0) return {0.0, 0.0};  // nothing counted: no gradient (as TrainModel)
  reserve(m, B, T, train);
  upload_params(m);
  embed(m, tokens, M);
  targets_.upload(targets, static_cast<size_t>(M), 0, stream_);
  if (weights) weights_.upload(weights, static_cast<size_t>(M), 0, stream_);
  const float* x_last = run_layers(m, B, T, train);
  // Final norm, head and loss by chunks of rows (train_model.cpp head_loss).
  const GpuLinearContext cx = ctx(m);
  cuda::rmsnorm_fwd(xf_.data(), rstd_f_.data(), x_last, out_norm_.data(), M, D, static_cast<float>(m.config_.rms_eps),
                    stream_);
  const float coef = total > 0 ? static_cast<float>(static_cast<double>(grad_scale) / total) : 0.0f;
  for (int64_t r0 = 0; r0 < M; r0 += m.opt_.head_rows) {
    const int64_t rows = std::min(m.opt_.head_rows, M - r0);
    head_.forward(logits_.data(), head_cache_, xf_.data() + r0 * D, rows, cx);
    gpu::cross_entropy_rows(logits_.data(), row_loss_.data() + r0, targets_.data() + r0,
                            weights ? weights_.data() + r0 : nullptr, rows, V, train, coef, stream_);
    if (train) head_.backward(dxf_.data() + r0 * D, logits_.data(), xf_.data() + r0 * D, head_cache_, rows, cx);
  }
  if (train) {
    cuda::rmsnorm_bwd(dx_.data(), dxf_.data(), x_last, out_norm_.data(), rstd_f_.data(), M, D, stream_);
    const bool keep = m.opt_.recompute == Recompute::Off;
    for (int64_t il = L - 1; il >= 0; --il) {
      const float* x = inputs_[static_cast<size_t>(il)].data();
      Acts& a = acts_[keep ? static_cast<size_t>(il) : 0];
      if (!keep) layer_fwd(m, il, x, inputs_[static_cast<size_t>(il + 1)].data(), a, B, T);
      layer_bwd(m, il, x, a, dx_.data(), B, T);
    }
  }
  std::vector<float> loss(static_cast<size_t>(M));
  LORDS_CUDA_CHECK(cudaMemcpyAsync(loss.data(), row_loss_.data(), loss.size() * sizeof(float),
                                   cudaMemcpyDeviceToHost, stream_));
  if (train) add_grads_to_host(m);  // synchronizes
  LORDS_CUDA_CHECK(cudaStreamSynchronize(stream_));
  double loss_sum = 0;
  for (int64_t i = 0; i < M; ++i)  // the kernel leaves 0 on rows not counted
    loss_sum += row_weight(targets, weights, i) * static_cast<double>(loss[static_cast<size_t>(i)]);
  return {total > 0 ? loss_sum / total : 0.0, total};
}

void GpuTrainEngine::logits(Model& m, float* out, const int32_t* tokens, int64_t B, int64_t T) {
  const int64_t M = B * T, D = m.config_.hidden, V = m.config_.vocab;
  reserve(m, B, T, false);
  upload_params(m);
  embed(m, tokens, M);
  const float* x_last = run_layers(m, B, T, false);
  cuda::rmsnorm_fwd(xf_.data(), rstd_f_.data(), x_last, out_norm_.data(), M, D, static_cast<float>(m.config_.rms_eps),
                    stream_);
  const GpuLinearContext cx = ctx(m);
  for (int64_t r0 = 0; r0 < M; r0 += m.opt_.head_rows) {
    const int64_t rows = std::min(m.opt_.head_rows, M - r0);
    head_.forward(logits_.data(), head_cache_, xf_.data() + r0 * D, rows, cx);
    LORDS_CUDA_CHECK(cudaMemcpyAsync(out + r0 * V, logits_.data(), static_cast<size_t>(rows * V) * sizeof(float),
                                     cudaMemcpyDeviceToHost, stream_));
    LORDS_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
}

std::shared_ptr<GpuTrainEngine> make_gpu_train_engine(const TrainModel<float>& m) {
  return std::make_shared<GpuTrainEngine>(m);
}

CrossEntropyResult gpu_forward_backward(GpuTrainEngine& e, TrainModel<float>& m, const int32_t* tokens,
                                        const int32_t* targets, const float* weights, int64_t B, int64_t T,
                                        float grad_scale) {
  return e.run(m, tokens, targets, weights, B, T, grad_scale, true);
}

CrossEntropyResult gpu_eval_loss(GpuTrainEngine& e, TrainModel<float>& m, const int32_t* tokens,
                                 const int32_t* targets, const float* weights, int64_t B, int64_t T) {
  return e.run(m, tokens, targets, weights, B, T, 1.0f, false);
}

void gpu_forward_logits(GpuTrainEngine& e, TrainModel<float>& m, float* logits, const int32_t* tokens, int64_t B,
                        int64_t T) {
  e.logits(m, logits, tokens, B, T);
}

}  // namespace lords::train
