// AdamW (Loshchilov & Hutter 2019, decoupled weight decay) with torch.optim.AdamW's arithmetic,
// over parameter groups that each carry an lr multiplier and a weight decay. Per element, at step
// t:
//   p -= lr_g wd_g p                                  decoupled decay (before the moment update)
//   m  = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2  fp32 moments
//   p -= (lr_g / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// with lr_g = lr (from the schedule, lr_schedule.h) * group.lr_scale. The optimizer does not own
// parameters or gradients: ParamTensor points at the trainer's buffers. Its whole state is the step
// counter plus m, v per tensor, and save/load (a binary stream, or named float arrays for a tensor
// file) restore it exactly, so a killed run resumes bit for bit.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

namespace lords::train {

struct ParamTensor {
  std::string name;        // unique within its group
  float* value = nullptr;  // (size) updated in place by step()
  float* grad = nullptr;   // (size) read by step(); scaled in place by clip_grad_norm()
  int64_t size = 0;
};

struct ParamGroup {
  std::string name;  // unique; state keys are "<group>.<tensor>"
  std::vector<ParamTensor> tensors;
  float lr_scale = 1.0f;      // e.g. 4 for B, A in the author's QAT config (qparam_lr_rate)
  float weight_decay = 0.0f;  // decoupled: p *= 1 - lr_g weight_decay
};

struct AdamWOptions {
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
};

using NamedArrays = std::map<std::string, std::vector<float>>;

class AdamW {
 public:
  // Throws Error{Usage} on empty or duplicate names, missing pointers, size < 1, or betas outside
  // [0, 1) / eps < 0.
  explicit AdamW(std::vector<ParamGroup> groups, const AdamWOptions& opt = {});

  // Global L2 norm of all gradients, summed in fp64 over fixed chunks (deterministic).
  double grad_norm() const;
  // torch.nn.utils.clip_grad_norm_: if norm > max_norm, every gradient is scaled by
  // max_norm / (norm + 1e-6). Returns the norm before clipping. A non-finite norm leaves the
  // gradients untouched (the caller should skip the step).
  double clip_grad_norm(double max_norm);
  // One update with base learning rate lr; increments steps() first (bias correction uses t >= 1).
  void step(float lr);

  int64_t steps() const { return step_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }

  // Binary: magic "LRDSADW1", step, then per tensor (in group order) its key, size, m and v. load()
  // checks that keys and sizes match this optimizer's groups (Error{Format}; Error{Io} on a short
  // stream) and changes nothing unless all of it does.
  void save(std::ostream& out) const;
  void load(std::istream& in);
  // "optim.step" (one float: exact up to 2^24 steps, checked), "optim.<key>.exp_avg" and
  // "optim.<key>.exp_avg_sq". load_state_arrays ignores other names (the map may hold weights too).
  NamedArrays state_arrays() const;
  void load_state_arrays(const NamedArrays& arrays);

 private:
  struct Moments {
    std::vector<float> m, v;  // (size) each
  };
  std::vector<std::string> keys() const;  // "<group>.<tensor>" in group order
  std::vector<ParamGroup> groups_;
  AdamWOptions opt_;
  std::vector<Moments> state_;  // one per tensor, in group order
  int64_t step_ = 0;
};

}  // namespace lords::train
