// The non-linear training ops of one backend, one call each, for models templated on the float
// type (train_model.cpp): with Backend::Cpu and float they run the fp32 cpu:: kernels (the forward
// ones from lords/ops), otherwise the templated ref:: kernels. The cpu kernels exist in fp32 only:
// Cpu with double would run ref, so TrainModel::load refuses that pair. Internal to lords_train.
#pragma once

#include <cstdint>
#include <type_traits>

#include "lords/core/error.h"
#include "lords/ops/embedding.h"
#include "lords/ops/rope.h"
#include "lords/ops/silu_mul.h"
#include "lords/runtime/backend.h"
#include "lords/train/grad_attention.h"
#include "lords/train/grad_cross_entropy.h"
#include "lords/train/grad_embedding.h"
#include "lords/train/grad_rmsnorm.h"
#include "lords/train/grad_rope.h"
#include "lords/train/grad_silu_mul.h"

namespace lords::train {

template <class Real>
struct BackendOps {
  using Backend = runtime::Backend;
  static constexpr bool kFloat = std::is_same_v<Real, float>;
  Backend backend = Backend::Cpu;

  void embedding_fwd(
      Real* x, const Real* table, const int32_t* tokens, int64_t M, int64_t V, int64_t D) const {
    if constexpr (kFloat) {
      if (backend == Backend::Cpu) return ops::cpu::embedding(x, table, tokens, M, V, D);
    }
    ref::embedding_fwd<Real>(x, table, tokens, M, V, D);
  }

  void rmsnorm_fwd(
      Real* y, Real* rstd, const Real* x, const Real* w, int64_t M, int64_t D, float eps) const {
    if constexpr (kFloat) {
      if (backend == Backend::Cpu) return cpu::rmsnorm_fwd(y, rstd, x, w, M, D, eps);
    }
    ref::rmsnorm_fwd<Real>(y, rstd, x, w, M, D, eps);
  }

  void rmsnorm_bwd(Real* dx,
                   Real* dw,
                   const Real* dy,
                   const Real* x,
                   const Real* w,
                   const Real* rstd,
                   int64_t M,
                   int64_t D) const {
    if constexpr (kFloat) {
      if (backend == Backend::Cpu) return cpu::rmsnorm_bwd(dx, dw, dy, x, w, rstd, M, D);
    }
    ref::rmsnorm_bwd<Real>(dx, dw, dy, x, w, rstd, M, D);
  }

  void rope_fwd(
      Real* x, const int64_t* pos, const float* inv_freq, int64_t M, int64_t H, int64_t Dh) const {
    if constexpr (kFloat) {
      if (backend == Backend::Cpu) return ops::cpu::rope(x, pos, inv_freq, M, H, Dh);
    }
    ref::rope_fwd<Real>(x, pos, inv_freq, M, H, Dh);
  }

  void rope_bwd(
      Real* dx, const int64_t* pos, const float* inv_freq, int64_t M, int64_t H, int64_t Dh) const {
    if constexpr (kFloat) {
      if (backend == Backend::Cpu) return cpu::rope_bwd(dx, pos, inv_freq, M, H, Dh);
    }
    ref::rope_bwd<Real>(dx, pos, inv_freq, M, H, Dh);
  }

  void attention_fwd(Real* out,
                     Real* lse,
                     const Real* q,
                     const Real* k,
                     const Real* v,
                     const AttentionTrainShape& s) const {
    if constexpr (kFloat) {
      if (backend == Backend::Cpu) return cpu::attention_fwd(out, lse, q, k, v, s);
    }
    ref::attention_fwd<Real>(out, lse, q, k, v, s);
  }

  void attention_bwd(Real* dq,
                     Real* dk,
                     Real* dv,
                     Real* delta,
                     const Real* dout,
                     const AttentionCache<Real>& c,
                     const AttentionTrainShape& s) const {
    if constexpr (kFloat) {
      if (backend == Backend::Cpu) return cpu::attention_bwd(dq, dk, dv, delta, dout, c, s);
    }
    ref::attention_bwd<Real>(dq, dk, dv, delta, dout, c, s);
  }

  void silu_mul_fwd(Real* out, const Real* gate, const Real* up, int64_t n) const {
    if constexpr (kFloat) {
      if (backend == Backend::Cpu) return ops::cpu::silu_mul(out, gate, up, n);
    }
    ref::silu_mul_fwd<Real>(out, gate, up, n);
  }

  void silu_mul_bwd(
      Real* dgate, Real* dup, const Real* dout, const Real* gate, const Real* up, int64_t n) const {
    if constexpr (kFloat) {
      if (backend == Backend::Cpu) return cpu::silu_mul_bwd(dgate, dup, dout, gate, up, n);
    }
    ref::silu_mul_bwd<Real>(dgate, dup, dout, gate, up, n);
  }

  CrossEntropyResult cross_entropy(Real* dlogits,
                                   const Real* logits,
                                   const int32_t* targets,
                                   const float* weights,
                                   int64_t M,
                                   int64_t V) const {
    if constexpr (kFloat) {
      if (backend == Backend::Cpu)
        return cpu::cross_entropy_fwd_bwd(dlogits, logits, targets, weights, M, V);
    }
    return ref::cross_entropy_fwd_bwd<Real>(dlogits, logits, targets, weights, M, V);
  }
};

}  // namespace lords::train
