// AdamW over parameter groups (see adamw.h). Elementwise updates run under OpenMP for large tensors
// (each element's arithmetic is independent, so the result does not depend on the thread count);
// the gradient norm is summed over fixed chunks in fp64 and the chunk sums are added in order,
// which makes it deterministic too. Serialization writes the host's native byte order (x86-64:
// little).
#include "lords/train/adamw.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <istream>
#include <ostream>
#include <set>
#include <utility>

#include "lords/core/error.h"

namespace lords::train {
namespace {

constexpr char kMagic[8] = {'L', 'R', 'D', 'S', 'A', 'D', 'W', '1'};
constexpr int64_t kChunk = int64_t{1} << 16;         // elements per gradient-norm partial sum
constexpr int64_t kMinParallel = int64_t{1} << 15;   // smaller tensors: one thread beats a team
constexpr int64_t kMaxFloatStep = int64_t{1} << 24;  // steps a float holds exactly
constexpr const char* kStepKey = "optim.step";

template <class V>
void write_pod(std::ostream& out, const V& v) {
  out.write(reinterpret_cast<const char*>(&v), sizeof v);
}

template <class V>
V read_pod(std::istream& in, const char* what) {
  V v{};
  in.read(reinterpret_cast<char*>(&v), sizeof v);
  LORDS_CHECK(in.good(), ErrorKind::Io, "[adamw] load: stream ended while reading {}", what);
  return v;
}

void read_floats(std::istream& in, std::vector<float>& v, const std::string& key) {
  in.read(reinterpret_cast<char*>(v.data()),
          static_cast<std::streamsize>(v.size() * sizeof(float)));
  LORDS_CHECK(in.good(), ErrorKind::Io, "[adamw] load: stream ended inside the state of {}", key);
}

}  // namespace

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& opt)
    : groups_(std::move(groups)), opt_(opt) {
  LORDS_CHECK(opt_.beta1 >= 0.0f && opt_.beta1 < 1.0f && opt_.beta2 >= 0.0f && opt_.beta2 < 1.0f,
              ErrorKind::Usage,
              "[adamw] betas ({}, {}), expected each in [0, 1)",
              opt_.beta1,
              opt_.beta2);
  LORDS_CHECK(opt_.eps >= 0.0f, ErrorKind::Usage, "[adamw] eps {}, expected >= 0", opt_.eps);
  std::set<std::string> group_names;
  for (const ParamGroup& g : groups_) {
    LORDS_CHECK(!g.name.empty() && group_names.insert(g.name).second,
                ErrorKind::Usage,
                "[adamw] group name '{}' is empty or repeated",
                g.name);
    std::set<std::string> names;
    for (const ParamTensor& t : g.tensors) {
      LORDS_CHECK(!t.name.empty() && names.insert(t.name).second,
                  ErrorKind::Usage,
                  "[adamw] group {}: tensor name '{}' is empty or repeated",
                  g.name,
                  t.name);
      LORDS_CHECK(t.value && t.grad && t.size >= 1,
                  ErrorKind::Usage,
                  "[adamw] {}.{}: value/grad missing or size {} < 1",
                  g.name,
                  t.name,
                  t.size);
      state_.push_back({std::vector<float>(static_cast<size_t>(t.size), 0.0f),
                        std::vector<float>(static_cast<size_t>(t.size), 0.0f)});
    }
  }
}

std::vector<std::string> AdamW::keys() const {
  std::vector<std::string> out;
  for (const ParamGroup& g : groups_)
    for (const ParamTensor& t : g.tensors) out.push_back(g.name + "." + t.name);
  return out;
}

double AdamW::grad_norm() const {
  struct Chunk {
    const float* p;
    int64_t n;
  };
  std::vector<Chunk> chunks;
  for (const ParamGroup& g : groups_)
    for (const ParamTensor& t : g.tensors)
      for (int64_t i = 0; i < t.size; i += kChunk)
        chunks.push_back({t.grad + i, std::min(kChunk, t.size - i)});
  std::vector<double> partial(chunks.size(), 0.0);
  const int64_t n_chunks = static_cast<int64_t>(chunks.size());
#pragma omp parallel for schedule(static) if (n_chunks > 1)
  for (int64_t c = 0; c < n_chunks; ++c) {
    double acc = 0.0;  // fp64: ~1e8 squares would lose the small ones in fp32
    for (int64_t i = 0; i < chunks[c].n; ++i)
      acc += static_cast<double>(chunks[c].p[i]) * chunks[c].p[i];
    partial[c] = acc;
  }
  double total = 0.0;
  for (double p : partial) total += p;  // in chunk order: the same bits every call
  return std::sqrt(total);
}

double AdamW::clip_grad_norm(double max_norm) {
  const double norm = grad_norm();
  if (!std::isfinite(norm) || norm <= max_norm) return norm;
  const float coef = static_cast<float>(max_norm / (norm + 1e-6));  // torch's 1e-6 keeps coef < 1
  for (ParamGroup& g : groups_)
    for (ParamTensor& t : g.tensors) {
#pragma omp parallel for schedule(static) if (t.size >= kMinParallel)
      for (int64_t i = 0; i < t.size; ++i) t.grad[i] *= coef;
    }
  return norm;
}

void AdamW::step(float lr) {
  ++step_;
  const double t = static_cast<double>(step_);
  // Bias corrections in fp64 (b2^t for t ~ 1e4 is where fp32 pow starts to drift), applied as
  // two fp32 scalars like torch: step_size on m, 1/sqrt(1 - b2^t) on sqrt(v).
  const double bc1 = 1.0 - std::pow(static_cast<double>(opt_.beta1), t);
  const double bc2 = 1.0 - std::pow(static_cast<double>(opt_.beta2), t);
  const float b1 = opt_.beta1, b2 = opt_.beta2, eps = opt_.eps;
  const float inv_bc2_sqrt = static_cast<float>(1.0 / std::sqrt(bc2));
  size_t ti = 0;
  for (ParamGroup& g : groups_) {
    const double lr_g = static_cast<double>(lr) * g.lr_scale;
    const float step_size = static_cast<float>(lr_g / bc1);
    const float decay = static_cast<float>(1.0 - lr_g * g.weight_decay);
    for (ParamTensor& pt : g.tensors) {
      float* p = pt.value;
      const float* grad = pt.grad;
      float* m = state_[ti].m.data();
      float* v = state_[ti].v.data();
      ++ti;
#pragma omp parallel for schedule(static) if (pt.size >= kMinParallel)
      for (int64_t i = 0; i < pt.size; ++i) {
        const float gi = grad[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        const float denom = std::sqrt(v[i]) * inv_bc2_sqrt + eps;
        p[i] =
            p[i] * decay - step_size * m[i] / denom;  // decay uses the pre-update p (torch order)
      }
    }
  }
}

void AdamW::save(std::ostream& out) const {
  out.write(kMagic, sizeof kMagic);
  write_pod(out, step_);
  write_pod(out, static_cast<uint64_t>(state_.size()));
  const std::vector<std::string> ks = keys();
  for (size_t i = 0; i < state_.size(); ++i) {
    write_pod(out, static_cast<uint64_t>(ks[i].size()));
    out.write(ks[i].data(), static_cast<std::streamsize>(ks[i].size()));
    write_pod(out, static_cast<int64_t>(state_[i].m.size()));
    out.write(reinterpret_cast<const char*>(state_[i].m.data()),
              static_cast<std::streamsize>(state_[i].m.size() * sizeof(float)));
    out.write(reinterpret_cast<const char*>(state_[i].v.data()),
              static_cast<std::streamsize>(state_[i].v.size() * sizeof(float)));
  }
  LORDS_CHECK(out.good(), ErrorKind::Io, "[adamw] save: write failed");
}

void AdamW::load(std::istream& in) {
  char magic[sizeof kMagic];
  in.read(magic, sizeof magic);
  LORDS_CHECK(in.good() && std::memcmp(magic, kMagic, sizeof kMagic) == 0,
              ErrorKind::Format,
              "[adamw] load: bad magic, expected an AdamW state (LRDSADW1)");
  const int64_t step = read_pod<int64_t>(in, "the step");
  LORDS_CHECK(step >= 0, ErrorKind::Format, "[adamw] load: step {}, expected >= 0", step);
  const uint64_t count = read_pod<uint64_t>(in, "the tensor count");
  const std::vector<std::string> ks = keys();
  LORDS_CHECK(count == ks.size(),
              ErrorKind::Format,
              "[adamw] load: {} tensors, expected {}",
              count,
              ks.size());
  std::vector<Moments> loaded(state_.size());  // nothing changes until all of it has been read
  for (size_t i = 0; i < ks.size(); ++i) {
    const uint64_t len = read_pod<uint64_t>(in, "a key length");
    LORDS_CHECK(len == ks[i].size(),
                ErrorKind::Format,
                "[adamw] load: tensor {}: key length {}, expected '{}'",
                i,
                len,
                ks[i]);
    std::string key(len, '\0');
    in.read(key.data(), static_cast<std::streamsize>(len));
    LORDS_CHECK(in.good() && key == ks[i],
                ErrorKind::Format,
                "[adamw] load: tensor {} is '{}', expected '{}'",
                i,
                key,
                ks[i]);
    const int64_t size = read_pod<int64_t>(in, "a tensor size");
    LORDS_CHECK(size == static_cast<int64_t>(state_[i].m.size()),
                ErrorKind::Format,
                "[adamw] load: {}: size {}, expected {}",
                key,
                size,
                state_[i].m.size());
    loaded[i].m.resize(static_cast<size_t>(size));
    loaded[i].v.resize(static_cast<size_t>(size));
    read_floats(in, loaded[i].m, key);
    read_floats(in, loaded[i].v, key);
  }
  state_ = std::move(loaded);
  step_ = step;
}

NamedArrays AdamW::state_arrays() const {
  LORDS_CHECK(step_ <= kMaxFloatStep,
              ErrorKind::Unsupported,
              "[adamw] step {} does not fit a float exactly",
              step_);
  NamedArrays out;
  out[kStepKey] = {static_cast<float>(step_)};
  const std::vector<std::string> ks = keys();
  for (size_t i = 0; i < ks.size(); ++i) {
    out["optim." + ks[i] + ".exp_avg"] = state_[i].m;
    out["optim." + ks[i] + ".exp_avg_sq"] = state_[i].v;
  }
  return out;
}

void AdamW::load_state_arrays(const NamedArrays& arrays) {
  const auto step_it = arrays.find(kStepKey);
  LORDS_CHECK(step_it != arrays.end() && step_it->second.size() == 1,
              ErrorKind::Format,
              "[adamw] load_state_arrays: '{}' missing or not one value",
              kStepKey);
  const float step_f = step_it->second[0];
  LORDS_CHECK(
      step_f >= 0.0f && step_f <= static_cast<float>(kMaxFloatStep) && std::floor(step_f) == step_f,
      ErrorKind::Format,
      "[adamw] load_state_arrays: step {}, expected a whole number in [0, 2^24]",
      step_f);
  const std::vector<std::string> ks = keys();
  std::vector<Moments> loaded(state_.size());
  for (size_t i = 0; i < ks.size(); ++i) {
    const size_t size = state_[i].m.size();
    for (const char* which : {"exp_avg", "exp_avg_sq"}) {
      const std::string name = "optim." + ks[i] + "." + which;
      const auto it = arrays.find(name);
      LORDS_CHECK(
          it != arrays.end(), ErrorKind::Format, "[adamw] load_state_arrays: '{}' missing", name);
      LORDS_CHECK(it->second.size() == size,
                  ErrorKind::Format,
                  "[adamw] load_state_arrays: '{}' has {} values, expected {}",
                  name,
                  it->second.size(),
                  size);
      (std::strcmp(which, "exp_avg") == 0 ? loaded[i].m : loaded[i].v) = it->second;
    }
  }
  state_ = std::move(loaded);
  step_ = static_cast<int64_t>(step_f);
}

}  // namespace lords::train
