// TrainModel: the training forward and backward (see train_model.h). One decoder layer, as HF
// LlamaDecoderLayer:
//   h     = x + o_proj(attn(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1))),  n1 = rmsnorm(x)
//   x_out = h + down_proj(silu(gate_proj(n2)) * up_proj(n2)),                  n2 = rmsnorm(h)
// and its backward in reverse, the residual gradient dx carried through both additions. Norm
// weights are frozen, so rmsnorm_bwd's weight gradient lands in a discarded scratch.
#include "lords/train/train_model.h"

#include <algorithm>
#include <cmath>

#include "lords/core/error.h"
#include "lords/train/backend_ops.h"

#ifdef LORDS_HAVE_CUDA
#include "lords/train/gpu/gpu_train_engine.h"
#endif

namespace lords::train {
namespace {

// x += y: residual adds and summed input gradients, memory-bound next to the linears.
template <class Real>
void add_to(Real* x, const Real* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

template <class Real>
void grow(std::vector<Real>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Workspace and argument checks.

template <class Real>
void TrainModel<Real>::check_batch(const int32_t* tokens,
                                   const int32_t* targets,
                                   const float* weights,
                                   int64_t B,
                                   int64_t T) const {
  LORDS_CHECK(B >= 1 && T >= 1, ErrorKind::Usage, "[train] batch {} x {}: both must be >= 1", B, T);
  LORDS_CHECK(T <= config_.max_pos,
              ErrorKind::Usage,
              "[train] sequence length {} exceeds max_position_embeddings {}",
              T,
              config_.max_pos);
  LORDS_CHECK(sliding_window_ == 0 || T <= sliding_window_,
              ErrorKind::Unsupported,
              "[train] sequence length {} exceeds the sliding window {} (not implemented)",
              T,
              sliding_window_);
  const int64_t M = B * T, V = config_.vocab;
  for (int64_t m = 0; m < M; ++m) {
    LORDS_CHECK(tokens[m] >= 0 && tokens[m] < V,
                ErrorKind::Usage,
                "[train] token {} at row {} is outside [0, {})",
                tokens[m],
                m,
                V);
    if (targets)
      LORDS_CHECK(targets[m] < V,
                  ErrorKind::Usage,
                  "[train] target {} at row {} is >= vocab {}",
                  targets[m],
                  m,
                  V);
    if (weights)
      LORDS_CHECK(std::isfinite(weights[m]) && weights[m] >= 0.0f,
                  ErrorKind::Usage,
                  "[train] loss weight {} at row {} must be finite and >= 0",
                  weights[m],
                  m);
  }
}

template <class Real>
void TrainModel<Real>::reserve(int64_t B, int64_t T, Pass pass) {
  const int64_t M = B * T, D = config_.hidden, I = config_.intermediate;
  const int64_t H = config_.n_head, Hq = H * config_.head_dim,
                Hk = config_.n_head_kv * config_.head_dim;
  const int64_t L = config_.n_layer;
  pos_.resize(static_cast<size_t>(M));
  for (int64_t m = 0; m < M; ++m) pos_[static_cast<size_t>(m)] = m % T;
  inputs_.resize(static_cast<size_t>(L + 1));
  const int64_t n_inputs = pass == Pass::Train ? L + 1 : 2;
  for (int64_t i = 0; i < n_inputs; ++i) grow(inputs_[static_cast<size_t>(i)], M * D);
  const bool all_layers = pass == Pass::Train && opt_.recompute == Recompute::Off;
  if (acts_.size() < static_cast<size_t>(all_layers ? L : 1)) acts_.resize(all_layers ? L : 1);
  for (size_t i = 0; i < (all_layers ? static_cast<size_t>(L) : 1); ++i) {
    LayerActs& a = acts_[i];
    for (auto* v : {&a.xn1, &a.h, &a.xn2}) grow(*v, M * D);
    for (auto* v : {&a.rstd1, &a.rstd2}) grow(*v, M);
    for (auto* v : {&a.q, &a.att}) grow(*v, M * Hq);
    for (auto* v : {&a.k, &a.v}) grow(*v, M * Hk);
    grow(a.lse, M * H);
    for (auto* v : {&a.gate, &a.up, &a.act}) grow(*v, M * I);
  }
  grow(xf_, M * D);
  grow(rstd_f_, M);
  grow(logits_, std::min(M, opt_.head_rows) * config_.vocab);
  if (pass == Pass::Train) {
    for (auto* v : {&g_.dx, &g_.dn, &g_.dtmp, &dxf_}) grow(*v, M * D);
    for (auto* v : {&g_.dq, &g_.datt}) grow(*v, M * Hq);
    for (auto* v : {&g_.dk, &g_.dv}) grow(*v, M * Hk);
    grow(g_.delta, M * H);
    for (auto* v : {&g_.dgate, &g_.dup, &g_.dact}) grow(*v, M * I);
    grow(g_.dnw, D);
  }
}

template <class Real>
void TrainModel<Real>::embed(Real* x, const int32_t* tokens, int64_t M) const {
  const BackendOps<Real> ops{opt_.backend};
  ops.embedding_fwd(x, embed_->data(), tokens, M, config_.vocab, config_.hidden);
}

// ---------------------------------------------------------------------------------------------
// One layer.

template <class Real>
void TrainModel<Real>::layer_fwd(
    int64_t il, const Real* x, Real* x_out, LayerActs& a, int64_t B, int64_t T) {
  Layer& l = layers_[static_cast<size_t>(il)];
  const BackendOps<Real> ops{opt_.backend};
  const int64_t M = B * T, D = config_.hidden, I = config_.intermediate;
  const int64_t H = config_.n_head, Hkv = config_.n_head_kv, Dh = config_.head_dim;
  const auto eps = static_cast<float>(config_.rms_eps);
  // Attention block.
  ops.rmsnorm_fwd(a.xn1.data(), a.rstd1.data(), x, l.attn_norm.data(), M, D, eps);
  l.lin[kQ].forward(a.q.data(), a.cache[kQ], a.xn1.data(), M, ctx_);
  l.lin[kK].forward(a.k.data(), a.cache[kK], a.xn1.data(), M, ctx_);
  l.lin[kV].forward(a.v.data(), a.cache[kV], a.xn1.data(), M, ctx_);
  ops.rope_fwd(a.q.data(), pos_.data(), inv_freq_.data(), M, H, Dh);
  ops.rope_fwd(a.k.data(), pos_.data(), inv_freq_.data(), M, Hkv, Dh);
  ops.attention_fwd(
      a.att.data(), a.lse.data(), a.q.data(), a.k.data(), a.v.data(), {B, T, H, Hkv, Dh});
  l.lin[kO].forward(a.h.data(), a.cache[kO], a.att.data(), M, ctx_);
  add_to(a.h.data(), x, M * D);  // h = x + o
  // MLP block (SwiGLU).
  ops.rmsnorm_fwd(a.xn2.data(), a.rstd2.data(), a.h.data(), l.ffn_norm.data(), M, D, eps);
  l.lin[kGate].forward(a.gate.data(), a.cache[kGate], a.xn2.data(), M, ctx_);
  l.lin[kUp].forward(a.up.data(), a.cache[kUp], a.xn2.data(), M, ctx_);
  ops.silu_mul_fwd(a.act.data(), a.gate.data(), a.up.data(), M * I);
  l.lin[kDown].forward(x_out, a.cache[kDown], a.act.data(), M, ctx_);
  add_to(x_out, a.h.data(), M * D);  // x_out = h + down
}

template <class Real>
void TrainModel<Real>::layer_bwd(
    int64_t il, const Real* x, LayerActs& a, Real* dx, int64_t B, int64_t T) {
  Layer& l = layers_[static_cast<size_t>(il)];
  const BackendOps<Real> ops{opt_.backend};
  const int64_t M = B * T, D = config_.hidden, I = config_.intermediate;
  const int64_t H = config_.n_head, Hkv = config_.n_head_kv, Dh = config_.head_dim;
  Real *dn = g_.dn.data(), *dtmp = g_.dtmp.data();
  // MLP block: x_out = h + down(silu(gate(n2)) * up(n2)). dx enters as dL/dx_out.
  l.lin[kDown].backward(g_.dact.data(), dx, a.act.data(), a.cache[kDown], M, ctx_);
  ops.silu_mul_bwd(
      g_.dgate.data(), g_.dup.data(), g_.dact.data(), a.gate.data(), a.up.data(), M * I);
  l.lin[kGate].backward(dn, g_.dgate.data(), a.xn2.data(), a.cache[kGate], M, ctx_);
  l.lin[kUp].backward(dtmp, g_.dup.data(), a.xn2.data(), a.cache[kUp], M, ctx_);
  add_to(dn, dtmp, M * D);  // n2 feeds both gate and up
  ops.rmsnorm_bwd(dtmp, g_.dnw.data(), dn, a.h.data(), l.ffn_norm.data(), a.rstd2.data(), M, D);
  add_to(dx, dtmp, M * D);  // dL/dh = residual path + norm path
  // Attention block: h = x + o(attn(...)).
  l.lin[kO].backward(g_.datt.data(), dx, a.att.data(), a.cache[kO], M, ctx_);
  const AttentionCache<Real> c{a.q.data(), a.k.data(), a.v.data(), a.att.data(), a.lse.data()};
  ops.attention_bwd(g_.dq.data(),
                    g_.dk.data(),
                    g_.dv.data(),
                    g_.delta.data(),
                    g_.datt.data(),
                    c,
                    {B, T, H, Hkv, Dh});
  // The saved q, k are rotated; their gradients go back through the rotation to q_proj, k_proj.
  ops.rope_bwd(g_.dq.data(), pos_.data(), inv_freq_.data(), M, H, Dh);
  ops.rope_bwd(g_.dk.data(), pos_.data(), inv_freq_.data(), M, Hkv, Dh);
  l.lin[kQ].backward(dn, g_.dq.data(), a.xn1.data(), a.cache[kQ], M, ctx_);
  l.lin[kK].backward(dtmp, g_.dk.data(), a.xn1.data(), a.cache[kK], M, ctx_);
  add_to(dn, dtmp, M * D);
  l.lin[kV].backward(dtmp, g_.dv.data(), a.xn1.data(), a.cache[kV], M, ctx_);
  add_to(dn, dtmp, M * D);
  ops.rmsnorm_bwd(dtmp, g_.dnw.data(), dn, x, l.attn_norm.data(), a.rstd1.data(), M, D);
  add_to(dx, dtmp, M * D);  // dL/dx = residual path + norm path
}

// ---------------------------------------------------------------------------------------------
// Whole model.

template <class Real>
const Real* TrainModel<Real>::run_layers(Pass pass, int64_t B, int64_t T) {
  const int64_t L = config_.n_layer;
  if (pass == Pass::Eval) {  // ping-pong between two buffers, nothing kept
    for (int64_t il = 0; il < L; ++il)
      layer_fwd(il,
                inputs_[static_cast<size_t>(il % 2)].data(),
                inputs_[static_cast<size_t>((il + 1) % 2)].data(),
                acts_[0],
                B,
                T);
    return inputs_[static_cast<size_t>(L % 2)].data();
  }
  const bool keep = opt_.recompute == Recompute::Off;
  for (int64_t il = 0; il < L; ++il)
    layer_fwd(il,
              inputs_[static_cast<size_t>(il)].data(),
              inputs_[static_cast<size_t>(il + 1)].data(),
              acts_[keep ? static_cast<size_t>(il) : 0],
              B,
              T);
  return inputs_[static_cast<size_t>(L)].data();
}

template <class Real>
CrossEntropyResult TrainModel<Real>::head_loss(const Real* x_last,
                                               const int32_t* targets,
                                               const float* weights,
                                               int64_t M,
                                               float grad_scale,
                                               Real* dx) {
  const BackendOps<Real> ops{opt_.backend};
  const int64_t D = config_.hidden, V = config_.vocab;
  const auto eps = static_cast<float>(config_.rms_eps);
  ops.rmsnorm_fwd(xf_.data(), rstd_f_.data(), x_last, out_norm_.data(), M, D, eps);
  // The gradient of the whole batch's mean: each chunk's dlogits (of its own mean) is scaled by
  // chunk count / total count, so the total must be known before the first chunk.
  const double total = counted_weight(targets, weights, M);
  double loss_sum = 0;
  for (int64_t r0 = 0; r0 < M; r0 += opt_.head_rows) {
    const int64_t rows = std::min(opt_.head_rows, M - r0);
    Real* logits = logits_.data();  // (rows, V), then dlogits in place
    head_.forward(logits, head_cache_, xf_.data() + r0 * D, rows, ctx_);
    const CrossEntropyResult ce = ops.cross_entropy(
        dx ? logits : nullptr, logits, targets + r0, weights ? weights + r0 : nullptr, rows, V);
    loss_sum += ce.loss * ce.count;
    if (!dx) continue;
    if (ce.count == 0) {  // no counted row: no gradient from these rows
      std::fill(dxf_.begin() + r0 * D, dxf_.begin() + (r0 + rows) * D, Real(0));
      continue;
    }
    const auto s = static_cast<Real>(static_cast<double>(grad_scale) * ce.count / total);
    for (int64_t i = 0; i < rows * V; ++i) logits[i] *= s;
    head_.backward(dxf_.data() + r0 * D, logits, xf_.data() + r0 * D, head_cache_, rows, ctx_);
  }
  if (dx)
    ops.rmsnorm_bwd(dx, g_.dnw.data(), dxf_.data(), x_last, out_norm_.data(), rstd_f_.data(), M, D);
  return {total > 0 ? loss_sum / total : 0.0, total};
}

template <class Real>
CrossEntropyResult TrainModel<Real>::forward_backward(const int32_t* tokens,
                                                      const int32_t* targets,
                                                      const float* loss_weights,
                                                      int64_t B,
                                                      int64_t T,
                                                      float grad_scale) {
  LORDS_CHECK(targets != nullptr, ErrorKind::Usage, "[train] forward_backward needs targets");
  LORDS_CHECK(std::isfinite(grad_scale),
              ErrorKind::Usage,
              "[train] grad_scale {} must be finite",
              grad_scale);
  check_batch(tokens, targets, loss_weights, B, T);
#ifdef LORDS_HAVE_CUDA
  if constexpr (std::is_same_v<Real, float>) {
    if (gpu_) return gpu_forward_backward(*gpu_, *this, tokens, targets, loss_weights, B, T, grad_scale);
  }
#endif
  reserve(B, T, Pass::Train);
  const int64_t M = B * T, L = config_.n_layer;
  embed(inputs_[0].data(), tokens, M);
  const Real* x_last = run_layers(Pass::Train, B, T);
  Real* dx = g_.dx.data();
  const CrossEntropyResult res = head_loss(x_last, targets, loss_weights, M, grad_scale, dx);
  if (res.count == 0) return res;  // nothing counted: the gradient is zero
  const bool keep = opt_.recompute == Recompute::Off;
  for (int64_t il = L - 1; il >= 0; --il) {
    const Real* x = inputs_[static_cast<size_t>(il)].data();
    LayerActs& a = acts_[keep ? static_cast<size_t>(il) : 0];
    // Recompute: the same ops on the same input give the same activations, bit for bit; the
    // output rewrites inputs_[il + 1] with the values it already holds.
    if (!keep) layer_fwd(il, x, inputs_[static_cast<size_t>(il + 1)].data(), a, B, T);
    layer_bwd(il, x, a, dx, B, T);
  }
  // dx now holds dL/d embedding output; the embedding is frozen, so it ends here.
  return res;
}

template <class Real>
CrossEntropyResult TrainModel<Real>::eval_loss(const int32_t* tokens,
                                               const int32_t* targets,
                                               const float* loss_weights,
                                               int64_t B,
                                               int64_t T) {
  LORDS_CHECK(targets != nullptr, ErrorKind::Usage, "[train] eval_loss needs targets");
  check_batch(tokens, targets, loss_weights, B, T);
#ifdef LORDS_HAVE_CUDA
  if constexpr (std::is_same_v<Real, float>) {
    if (gpu_) return gpu_eval_loss(*gpu_, *this, tokens, targets, loss_weights, B, T);
  }
#endif
  reserve(B, T, Pass::Eval);
  embed(inputs_[0].data(), tokens, B * T);
  const Real* x_last = run_layers(Pass::Eval, B, T);
  return head_loss(x_last, targets, loss_weights, B * T, 1.0f, nullptr);
}

template <class Real>
void TrainModel<Real>::forward_logits(Real* logits, const int32_t* tokens, int64_t B, int64_t T) {
  check_batch(tokens, nullptr, nullptr, B, T);
#ifdef LORDS_HAVE_CUDA
  if constexpr (std::is_same_v<Real, float>) {
    if (gpu_) return gpu_forward_logits(*gpu_, *this, logits, tokens, B, T);
  }
#endif
  reserve(B, T, Pass::Eval);
  const int64_t M = B * T, D = config_.hidden;
  embed(inputs_[0].data(), tokens, M);
  const Real* x_last = run_layers(Pass::Eval, B, T);
  const BackendOps<Real> ops{opt_.backend};
  ops.rmsnorm_fwd(xf_.data(),
                  rstd_f_.data(),
                  x_last,
                  out_norm_.data(),
                  M,
                  D,
                  static_cast<float>(config_.rms_eps));
  head_.forward(logits, head_cache_, xf_.data(), M, ctx_);
}

// ---------------------------------------------------------------------------------------------
// Parameters.

template <class Real>
std::vector<TrainableLinear<Real>*> TrainModel<Real>::linears() {
  std::vector<TrainableLinear<Real>*> out;
  for (Layer& l : layers_)
    for (TrainableLinear<Real>& x : l.lin) out.push_back(&x);
  out.push_back(&head_);
  return out;
}

template <class Real>
std::vector<const TrainableLinear<Real>*> TrainModel<Real>::linears() const {
  std::vector<const TrainableLinear<Real>*> out;
  for (const Layer& l : layers_)
    for (const TrainableLinear<Real>& x : l.lin) out.push_back(&x);
  out.push_back(&head_);
  return out;
}

template <class Real>
void TrainModel<Real>::zero_grad() {
  for (TrainableLinear<Real>* l : linears()) l->zero_grad();
}

template <class Real>
std::vector<ParamRef<Real>> TrainModel<Real>::params() {
  std::vector<ParamRef<Real>> out;
  for (TrainableLinear<Real>* l : linears())
    for (ParamRef<Real>& p : l->params()) out.push_back(std::move(p));
  return out;
}

template <class Real>
int64_t TrainModel<Real>::trainable_count() const {
  int64_t n = 0;
  for (const TrainableLinear<Real>* l : linears()) n += l->trainable_count();
  return n;
}

template <class Real>
std::vector<ParamGroup> TrainModel<Real>::param_groups(
    const GroupOptions& g) requires std::is_same_v<Real, float> {
  ParamGroup scales{"scales", {}, g.scales_lr_scale, g.scales_weight_decay};
  ParamGroup latent{"latent", {}, g.latent_lr_scale, g.latent_weight_decay};
  ParamGroup lora{"lora", {}, g.lora_lr_scale, g.lora_weight_decay};
  for (const ParamRef<float>& p : params()) {
    ParamGroup& dst = p.role == ParamRole::Scale    ? scales
                      : p.role == ParamRole::Latent ? latent
                                                    : lora;
    dst.tensors.push_back({p.name, p.value, p.grad, p.size});
  }
  std::vector<ParamGroup> out;
  for (ParamGroup* grp : {&scales, &latent, &lora})
    if (!grp->tensors.empty()) out.push_back(std::move(*grp));
  return out;
}

template class TrainModel<float>;
template class TrainModel<double>;

}  // namespace lords::train
