// TrainableLinear: storage per kind and dispatch to the ref (templated) or cpu (fp32) ops. See
// trainable_linear.h.
#include "lords/train/trainable_linear.h"

#include <algorithm>
#include <type_traits>

#include "lords/core/error.h"
#include "lords/ops/matmul.h"
#include "lords/quant/blockwise.h"
#include "lords/quant/pack.h"
#include "lords/train/grad_linear.h"
#include "lords/train/lora_linear.h"
#include "lords/train/qlinear_grad.h"

namespace lords::train {
namespace {

template <class Real>
std::vector<Real> widen(const float* p, int64_t n) {
  return std::vector<Real>(p, p + n);
}

// The cpu ops exist in fp32 only; the model refuses Cpu with double at load, so reaching this
// with another type is a bug.
template <class Real>
constexpr bool kHasCpu = std::is_same_v<Real, float>;

}  // namespace

template <class Real>
TrainableLinear<Real> TrainableLinear<Real>::dense(std::string name,
                                                   std::shared_ptr<const std::vector<Real>> W,
                                                   int64_t N,
                                                   int64_t K,
                                                   std::optional<std::vector<Real>> bias) {
  LORDS_ASSERT(W && static_cast<int64_t>(W->size()) == N * K);
  LORDS_ASSERT(!bias || static_cast<int64_t>(bias->size()) == N);
  TrainableLinear l;
  l.name_ = std::move(name);
  l.kind_ = LinearKind::Dense;
  l.N_ = N;
  l.K_ = K;
  l.dense_ = std::move(W);
  l.bias_ = std::move(bias);
  return l;
}

template <class Real>
TrainableLinear<Real> TrainableLinear<Real>::quantized(std::string name,
                                                       const ops::QWeight& q,
                                                       LinearKind kind,
                                                       std::optional<std::vector<Real>> bias,
                                                       runtime::Backend backend) {
  LORDS_ASSERT(kind != LinearKind::Dense);
  LORDS_ASSERT(!bias || static_cast<int64_t>(bias->size()) == q.N);
  const bool needs_lowrank = kind == LinearKind::Lords || kind == LinearKind::FakeQuant;
  LORDS_CHECK(!needs_lowrank || q.kind == ops::QScaleKind::LowRank,
              ErrorKind::Unsupported,
              "[train] {}: training the scales needs a LoRDS (low-rank) linear, this one has "
              "block scales",
              name);
  TrainableLinear l;
  l.name_ = std::move(name);
  l.kind_ = kind;
  l.N_ = q.N;
  l.K_ = q.K;
  l.scale_kind_ = q.kind;
  l.bits_ = q.bits;
  const int64_t row_bytes = quant::packed_row_bytes(q.K, q.bits);
  l.packed_.assign(q.codes, q.codes + q.N * row_bytes);
  l.levels_ = widen<Real>(q.levels, int64_t{1} << q.bits);
  if (backend == runtime::Backend::Ref || kind == LinearKind::FakeQuant) {
    l.codes_.resize(static_cast<size_t>(q.N * q.K));
    quant::unpack_codes(q.codes, q.N, q.K, q.bits, l.codes_.data());
  }
  if (q.kind == ops::QScaleKind::LowRank) {
    l.r_ = q.r;
    l.B_ = widen<Real>(q.B, q.N * q.r);
    l.A_ = widen<Real>(q.A, q.r * q.K);
  } else {
    l.G_ = q.G;
    l.scales_ = widen<Real>(q.scales, q.N * quant::num_blocks(q.K, q.G));
  }
  if (needs_lowrank) {
    l.gB_.assign(l.B_.size(), Real(0));
    l.gA_.assign(l.A_.size(), Real(0));
  }
  if (kind == LinearKind::FakeQuant) {
    // The latent weight starts at what the checkpoint stores, W_hat = level[Q] S (in Real, the
    // same products ref::dequant_row forms).
    l.W_.resize(static_cast<size_t>(q.N * q.K));
    const ref::UnpackedWeight<Real> u = l.unpacked();
    for (int64_t n = 0; n < q.N; ++n) ref::dequant_row(l.W_.data() + n * q.K, u, n);
    l.gW_.assign(l.W_.size(), Real(0));
    // The forward chooses its own codes from W / S: the stored ones only seeded W.
    l.codes_ = {};
    l.packed_ = {};
  }
  l.bias_ = std::move(bias);
  return l;
}

template <class Real>
void TrainableLinear<Real>::set_lora(
    int64_t r, float alpha, const float* A, const float* B, uint64_t seed) {
  LORDS_ASSERT(kind_ == LinearKind::Lora && r >= 1 && alpha > 0);
  lora_r_ = r;
  lora_alpha_ = alpha;
  std::vector<float> a(static_cast<size_t>(r * K_)), b(static_cast<size_t>(N_ * r));
  if (A && B) {
    std::copy(A, A + r * K_, a.begin());
    std::copy(B, B + N_ * r, b.begin());
  } else {
    lora_init(a.data(), b.data(), N_, K_, r, seed);
  }
  lA_.assign(a.begin(), a.end());
  lB_.assign(b.begin(), b.end());
  glA_.assign(lA_.size(), Real(0));
  glB_.assign(lB_.size(), Real(0));
}

template <class Real>
void TrainableLinear<Real>::set_latent(const float* W) {
  LORDS_ASSERT(kind_ == LinearKind::FakeQuant);
  W_.assign(W, W + N_ * K_);
}

template <class Real>
ref::UnpackedWeight<Real> TrainableLinear<Real>::unpacked() const {
  LORDS_ASSERT(!codes_.empty());
  return qweight_view<ref::UnpackedWeight<Real>>(scale_kind_, N_, K_, bits_, codes_, levels_, r_, B_, A_, G_,
                                                 scales_);
}

template <class Real>
ops::QWeight TrainableLinear<Real>::qweight() const {
  if constexpr (kHasCpu<Real>) {
    return qweight_view<ops::QWeight>(scale_kind_, N_, K_, bits_, packed_, levels_, r_, B_, A_, G_, scales_);
  } else {
    LORDS_ASSERT(false);
    return ops::QWeight{};
  }
}

template <class Real>
FakeQuantWeight<Real> TrainableLinear<Real>::fake_quant_weight() const {
  return {N_, K_, r_, bits_, W_.data(), B_.data(), A_.data(), levels_.data()};
}

template <class Real>
LoraAdapter<Real> TrainableLinear<Real>::adapter() const {
  return {lora_r_, static_cast<Real>(lora_alpha_), lA_.data(), lB_.data()};
}

template <class Real>
void TrainableLinear<Real>::add_bias(Real* Y, int64_t M) const {
  if (!bias_) return;
  const Real* b = bias_->data();
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N_; ++n) Y[m * N_ + n] += b[n];
}

template <class Real>
void TrainableLinear<Real>::forward(
    Real* Y, LinearCache<Real>& cache, const Real* X, int64_t M, const LinearContext& ctx) const {
  const bool cpu = ctx.backend == runtime::Backend::Cpu;
  LORDS_ASSERT(!cpu || kHasCpu<Real>);
  if (kind_ == LinearKind::Dense) {
    const Real* b = bias_ ? bias_->data() : nullptr;
    if constexpr (kHasCpu<Real>) {
      if (cpu) return ops::cpu::matmul(Y, X, dense_->data(), b, M, N_, K_);
    }
    return ref::linear_fwd<Real>(Y, X, dense_->data(), b, {M, N_, K_});
  }
  switch (kind_) {
    case LinearKind::Quantized:
    case LinearKind::Lords:
      if constexpr (kHasCpu<Real>) {
        if (cpu) {
          ops::cpu::qmatmul(Y, X, M, qweight());
          break;
        }
      }
      ref::qlinear_fwd<Real>(Y, X, M, unpacked());
      break;
    case LinearKind::FakeQuant:
      cache.codes.resize(static_cast<size_t>(N_ * K_));
      if constexpr (kHasCpu<Real>) {
        if (cpu) {
          cpu::fake_quant_linear_fwd(
              Y, cache.codes.data(), X, M, fake_quant_weight(), {ctx.ste, ctx.tiles});
          break;
        }
      }
      ref::fake_quant_linear_fwd<Real>(Y, cache.codes.data(), X, M, fake_quant_weight());
      break;
    case LinearKind::Lora:
      cache.xa.resize(static_cast<size_t>(M * lora_r_));
      if constexpr (kHasCpu<Real>) {
        if (cpu) {
          cpu::lora_linear_fwd(Y, cache.xa.data(), X, M, qweight(), adapter());
          break;
        }
      }
      ref::lora_linear_fwd<Real>(Y, cache.xa.data(), X, M, unpacked(), adapter());
      break;
    case LinearKind::Dense:
      break;
  }
  add_bias(Y, M);
}

template <class Real>
void TrainableLinear<Real>::backward(Real* dX,
                                     const Real* dY,
                                     const Real* X,
                                     const LinearCache<Real>& cache,
                                     int64_t M,
                                     const LinearContext& ctx) {
  const bool cpu = ctx.backend == runtime::Backend::Cpu;
  LORDS_ASSERT(!cpu || kHasCpu<Real>);
  switch (kind_) {
    case LinearKind::Dense:
      if constexpr (kHasCpu<Real>) {
        if (cpu) return cpu::linear_bwd(dX, nullptr, nullptr, dY, X, dense_->data(), {M, N_, K_});
      }
      return ref::linear_bwd<Real>(dX, nullptr, nullptr, dY, X, dense_->data(), {M, N_, K_});
    case LinearKind::Quantized:
      if constexpr (kHasCpu<Real>) {
        if (cpu) return cpu::qlinear_dx(dX, dY, M, qweight(), ctx.tiles);
      }
      return ref::qlinear_dx<Real>(dX, dY, M, unpacked());
    case LinearKind::Lords:
      if constexpr (kHasCpu<Real>) {
        if (cpu)
          return cpu::lords_linear_bwd(
              {dX, gB_.data(), gA_.data()}, dY, X, M, qweight(), ctx.tiles);
      }
      return ref::lords_linear_bwd<Real>({dX, gB_.data(), gA_.data()}, dY, X, M, unpacked());
    case LinearKind::FakeQuant: {
      LORDS_ASSERT(cache.codes.size() == static_cast<size_t>(N_ * K_));
      const FakeQuantGrads<Real> g{dX, gW_.data(), gB_.data(), gA_.data()};
      bool done = false;
      if constexpr (kHasCpu<Real>) {
        if (cpu) {
          cpu::fake_quant_linear_bwd(
              g, dY, X, cache.codes.data(), M, fake_quant_weight(), {ctx.ste, ctx.tiles});
          done = true;
        }
      }
      if (!done)
        ref::fake_quant_linear_bwd<Real>(
            g, dY, X, cache.codes.data(), M, fake_quant_weight(), {ctx.ste, ctx.tiles});
      // The op always forms dW; while W is frozen its gradient must stay exactly zero, so that
      // AdamW (zero moments, zero update) leaves W untouched.
      if (ctx.qat_phase == QatPhase::ScalesOnly) std::fill(gW_.begin(), gW_.end(), Real(0));
      return;
    }
    case LinearKind::Lora:
      LORDS_ASSERT(cache.xa.size() >= static_cast<size_t>(M * lora_r_));
      if constexpr (kHasCpu<Real>) {
        if (cpu)
          return cpu::lora_linear_bwd({dX, glA_.data(), glB_.data()},
                                      dY,
                                      X,
                                      cache.xa.data(),
                                      M,
                                      qweight(),
                                      adapter(),
                                      ctx.tiles);
      }
      return ref::lora_linear_bwd<Real>(
          {dX, glA_.data(), glB_.data()}, dY, X, cache.xa.data(), M, unpacked(), adapter());
  }
}

// The trainable tensors of l (const or not), one list for both params() overloads.
template <class Real>
template <class P, class Self>
std::vector<P> TrainableLinear<Real>::collect_params(Self& l) {
  std::vector<P> p;
  auto add = [&](const char* suffix, ParamRole role, auto& v, auto& g) {
    p.push_back({l.name_ + suffix, role, v.data(), g.data(), static_cast<int64_t>(v.size())});
  };
  if (l.kind_ == LinearKind::Lords || l.kind_ == LinearKind::FakeQuant) {
    add(".lords_B", ParamRole::Scale, l.B_, l.gB_);
    add(".lords_A", ParamRole::Scale, l.A_, l.gA_);
  }
  if (l.kind_ == LinearKind::FakeQuant) add(".latent", ParamRole::Latent, l.W_, l.gW_);
  if (l.kind_ == LinearKind::Lora) {
    add(".lora_A", ParamRole::Lora, l.lA_, l.glA_);
    add(".lora_B", ParamRole::Lora, l.lB_, l.glB_);
  }
  return p;
}

template <class Real>
std::vector<ParamRef<Real>> TrainableLinear<Real>::params() {
  return collect_params<ParamRef<Real>>(*this);
}

template <class Real>
std::vector<ParamRef<const Real>> TrainableLinear<Real>::params() const {
  return collect_params<ParamRef<const Real>>(*this);
}

template <class Real>
int64_t TrainableLinear<Real>::trainable_count() const {
  size_t n = 0;
  for (const std::vector<Real>* g : {&gB_, &gA_, &gW_, &glA_, &glB_}) n += g->size();
  return static_cast<int64_t>(n);
}

template <class Real>
void TrainableLinear<Real>::zero_grad() {
  for (std::vector<Real>* g : {&gB_, &gA_, &gW_, &glA_, &glB_})
    std::fill(g->begin(), g->end(), Real(0));
}

template class TrainableLinear<float>;
template class TrainableLinear<double>;

}  // namespace lords::train
