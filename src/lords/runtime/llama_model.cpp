// LlamaModel: loading (HF / GGUF / lords checkpoint) and the forward pass. See llama_model.h.
#include "lords/runtime/llama_model.h"

#include <filesystem>
#include <functional>
#include <map>
#include <optional>

#include "lords/core/error.h"
#include "lords/engine/checkpoint.h"
#include "lords/io/model_source.h"
#include "lords/model/weight_table.h"
#include "lords/ops/attention.h"
#include "lords/ops/embedding.h"
#include "lords/ops/rmsnorm.h"
#include "lords/ops/rope.h"
#include "lords/ops/silu_mul.h"
#include "lords/runtime/lora_adapters.h"

namespace lords::runtime {

namespace {

// ---------------------------------------------------------------------------------------------
// Kernel table: the non-linear ops of one backend (linears dispatch inside Linear::forward).

struct Kernels {
  void (*rmsnorm)(float*, const float*, const float*, int64_t, int64_t, float);
  void (*rope)(float*, const int64_t*, const float*, int64_t, int64_t, int64_t);
  void (*attention)(float*, const float*, const float*, const float*, const ops::AttentionShape&);
  void (*silu_mul)(float*, const float*, const float*, int64_t);
  void (*embedding)(float*, const float*, const int32_t*, int64_t, int64_t, int64_t);
};
constexpr Kernels kRefKernels{&ops::ref::rmsnorm, &ops::ref::rope, &ops::ref::attention, &ops::ref::silu_mul,
                              &ops::ref::embedding};
constexpr Kernels kCpuKernels{&ops::cpu::rmsnorm, &ops::cpu::rope, &ops::cpu::attention, &ops::cpu::silu_mul,
                              &ops::cpu::embedding};
const Kernels& kernels(Backend b) { return b == Backend::Ref ? kRefKernels : kCpuKernels; }

// x += y: the residual add, memory-bound and tiny next to the projections.
void add_to(float* x, const float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

// ---------------------------------------------------------------------------------------------
// Config pieces the ModelConfig does not carry.

double json_number(const nlohmann::json& j, const char* key, double fallback, const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  LORDS_CHECK(j[key].is_number(), ErrorKind::Format, "{}: rope_scaling.{} must be a number, got {}", path, key,
              j[key].dump());
  return j[key].get<double>();
}

// HF rope_scaling: null, {"rope_type"|"type": "default"|"linear"|"llama3", "factor": ..., ...}.
ops::RopeScaling rope_scaling_from_config(const nlohmann::json& rs, const std::string& path) {
  ops::RopeScaling s;
  if (rs.is_null()) return s;
  LORDS_CHECK(rs.is_object(), ErrorKind::Format, "{}: rope_scaling must be an object or null", path);
  const char* key = rs.contains("rope_type") ? "rope_type" : "type";
  const std::string type = rs.contains(key) && rs[key].is_string() ? rs[key].get<std::string>() : "";
  if (type == "default") return s;
  s.factor = json_number(rs, "factor", 1.0, path);
  LORDS_CHECK(s.factor > 0, ErrorKind::Format, "{}: rope_scaling.factor must be positive", path);
  if (type == "linear") {
    s.kind = ops::RopeScalingKind::Linear;
  } else if (type == "llama3") {
    s.kind = ops::RopeScalingKind::Llama3;
    s.low_freq_factor = json_number(rs, "low_freq_factor", 1.0, path);
    s.high_freq_factor = json_number(rs, "high_freq_factor", 4.0, path);
    s.original_max_position_embeddings =
        static_cast<int64_t>(json_number(rs, "original_max_position_embeddings", 8192, path));
    LORDS_CHECK(s.high_freq_factor > s.low_freq_factor && s.low_freq_factor > 0 &&
                    s.original_max_position_embeddings > 0,
                ErrorKind::Format, "{}: rope_scaling llama3 needs high_freq_factor > low_freq_factor > 0", path);
  } else {
    LORDS_FAIL(ErrorKind::Unsupported, "{}: rope_scaling type '{}' is not supported (default, linear, llama3)", path,
               type);
  }
  return s;
}

// Mistral always slides; Qwen2 only with use_sliding_window. 0: no window.
int64_t sliding_window_from_config(const nlohmann::json& c, model::Arch arch) {
  if (arch != model::Arch::Mistral && !(arch == model::Arch::Qwen2 && c.value("use_sliding_window", false)))
    return 0;
  const auto it = c.find("sliding_window");
  return it != c.end() && it->is_number_integer() ? std::max<int64_t>(0, it->get<int64_t>()) : 0;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Loading. One builder for every source: `tensor` reads a plain weight by its table entry (nullopt:
// optional and absent), `ck` (if any) supplies the quantized linears, `adapters` (if any) LoRA branches.

struct LlamaModel::Builder {
  std::function<std::optional<HostTensor>(const model::WeightSpec&)> tensor;
  const engine::Checkpoint* ck = nullptr;
  LoraAdapters* adapters = nullptr;
  std::string path;

  LlamaModel build(const model::ModelConfig& config, const nlohmann::json& raw_config, Backend backend) const;
};

LlamaModel LlamaModel::Builder::build(const model::ModelConfig& config, const nlohmann::json& raw_config,
                                      Backend backend) const {
  LORDS_CHECK(config.is_decoder(), ErrorKind::Unsupported,
              "[load] {}: architecture '{}' is supported for quantization only, not by the runtime", path,
              config.model_type);
  LORDS_CHECK(config.head_dim % 2 == 0 && config.head_dim <= ops::kMaxHeadDim, ErrorKind::Unsupported,
              "[load] {}: head_dim {} must be even and at most {}", path, config.head_dim, ops::kMaxHeadDim);
  std::map<std::string, model::WeightSpec> specs;
  for (const model::WeightSpec& s : model::weight_table(config)) specs[s.internal] = s;
  auto values = [&](const std::string& name) {
    std::optional<HostTensor> t = tensor(specs.at(name));
    LORDS_ASSERT(t);  // required weights throw in `tensor` when absent
    return std::move(t->data);
  };
  auto attach_lora = [&](Linear& l, const std::string& hf) {
    if (!adapters || !adapters->adapts(hf)) return;
    std::vector<float> A, B;
    adapters->load(hf, l.N(), l.K(), &A, &B);
    l.set_lora(adapters->rank(), adapters->alpha(), std::move(A), std::move(B), hf);
  };
  auto linear = [&](const std::string& name, const std::string& bias_name = "") {
    std::optional<std::vector<float>> bias;
    if (!bias_name.empty() && specs.count(bias_name)) bias = values(bias_name);
    const model::WeightSpec& spec = specs.at(name);
    Linear l;
    if (ck && ck->is_quantized(spec.hf)) {
      const Shape got = ck->layer_table().at(spec.hf).at("shape").get<Shape>();
      LORDS_CHECK(got == spec.shape, ErrorKind::BadShape, "[load] {}: quantized '{}' has shape {}, expected {}",
                  path, spec.hf, shape_str(got), shape_str(spec.shape));
      l = Linear::quantized(*ck, spec.hf, std::move(bias));
    } else {
      std::optional<HostTensor> w = tensor(spec);
      LORDS_ASSERT(w);
      l = Linear::dense(std::make_shared<const HostTensor>(std::move(*w)), std::move(bias));
    }
    attach_lora(l, spec.hf);
    return l;
  };

  LlamaModel m;
  m.config_ = config;
  m.backend_ = backend;
  m.sliding_window_ = sliding_window_from_config(raw_config, config.arch);
  std::optional<HostTensor> embed = tensor(specs.at("token_embd.weight"));
  LORDS_ASSERT(embed);
  m.embed_ = std::make_shared<const HostTensor>(std::move(*embed));
  for (int64_t i = 0; i < config.n_layer; ++i) {
    const std::string b = fmt::format("blk.{}.", i);
    LlamaLayer l;
    l.attn_norm = values(b + "attn_norm.weight");
    l.ffn_norm = values(b + "ffn_norm.weight");
    l.q = linear(b + "attn_q.weight", b + "attn_q.bias");
    l.k = linear(b + "attn_k.weight", b + "attn_k.bias");
    l.v = linear(b + "attn_v.weight", b + "attn_v.bias");
    l.o = linear(b + "attn_output.weight");
    l.gate = linear(b + "ffn_gate.weight");
    l.up = linear(b + "ffn_up.weight");
    l.down = linear(b + "ffn_down.weight");
    m.layers_.push_back(std::move(l));
  }
  m.out_norm_ = values("output_norm.weight");
  // Tied: the head is the embedding (shared, not copied), unless a checkpoint quantized lm_head itself.
  const bool own_head = !config.tie_embeddings || (ck && ck->is_quantized("lm_head.weight"));
  if (own_head) {
    m.head_ = linear("output.weight");
  } else {
    m.head_ = Linear::dense(m.embed_);
    attach_lora(m.head_, specs.at("output.weight").hf);  // the branch is the head's own, not the embedding's
  }
  if (adapters) adapters->check_all_used(path);

  m.inv_freq_.resize(static_cast<size_t>(config.head_dim / 2));
  ops::rope_inv_freq(m.inv_freq_.data(), config.head_dim, config.rope_theta,
                     rope_scaling_from_config(config.rope_scaling, path));
  // Llama-3 GGUFs carry the scaling as per-frequency divisors (llama.cpp rope_freqs / freq_factors).
  const model::WeightSpec freqs{"rope_freqs.weight", "rope_freqs.weight", "rope_freqs.weight", {config.head_dim / 2},
                                model::WeightRole::Other, false, 0};
  if (std::optional<HostTensor> f = tensor(freqs)) {
    LORDS_CHECK(config.rope_scaling.is_null(), ErrorKind::Unsupported,
                "[load] {}: both rope_scaling and a rope_freqs tensor are present", path);
    for (size_t i = 0; i < m.inv_freq_.size(); ++i) m.inv_freq_[i] /= f->data[i];
  }
  return m;
}

LlamaModel LlamaModel::load(const std::string& path, Backend backend) {
  io::ModelSource src = io::open_model(path);
  const auto format = src.st_metadata.find("format");
  if (src.kind == io::SourceKind::HfDir && format != src.st_metadata.end() && format->second == engine::kFormatName) {
    const engine::Checkpoint ck(path);
    const model::ModelConfig config = model::parse_model_config(ck.config(), ck.dir() + "/config.json");
    // A QLoRA fine-tune: the base checkpoint plus adapters.safetensors.
    std::optional<LoraAdapters> adapters;
    if (std::filesystem::exists(path + "/" + kLoraAdaptersFile)) adapters.emplace(path + "/" + kLoraAdaptersFile);
    Builder b;
    b.ck = &ck;
    b.adapters = adapters ? &*adapters : nullptr;
    b.path = path;
    b.tensor = [&](const model::WeightSpec& spec) -> std::optional<HostTensor> {
      if (!ck.index().contains(spec.hf)) {
        LORDS_CHECK(!spec.required, ErrorKind::Format, "[load] {}: missing tensor '{}'", ck.weights_path(), spec.hf);
        return std::nullopt;
      }
      HostTensor t = ck.index().load_f32(spec.hf);
      LORDS_CHECK(t.shape == spec.shape, ErrorKind::BadShape, "[load] {}: tensor '{}' has shape {}, expected {}",
                  ck.weights_path(), spec.hf, shape_str(t.shape), shape_str(spec.shape));
      return t;
    };
    return b.build(config, ck.config(), backend);
  }
  const model::ModelConfig config = model::parse_model_config(src.config, src.config_path);
  std::map<std::string, model::ResolvedWeight> resolved;
  if (config.is_decoder())
    for (model::ResolvedWeight& w : model::resolve_weights(src, config)) resolved[w.spec.internal] = std::move(w);
  Builder b;
  b.path = path;
  b.tensor = [&](const model::WeightSpec& spec) -> std::optional<HostTensor> {
    const auto it = resolved.find(spec.internal);
    if (it == resolved.end()) {  // resolve_weights already refused missing required tensors
      LORDS_CHECK(!spec.required, ErrorKind::Format, "[load] {}: missing tensor '{}'", path, spec.hf);
      return std::nullopt;
    }
    HostTensor t = model::load_weight(src, it->second);
    LORDS_CHECK(t.numel() == shape_numel(spec.shape), ErrorKind::BadShape,
                "[load] {}: tensor '{}' has shape {}, expected {}", path, it->second.source_name, shape_str(t.shape),
                shape_str(spec.shape));
    t.shape = spec.shape;
    return t;
  };
  return b.build(config, src.config, backend);
}

int64_t LlamaModel::quantized_linears() const {
  int64_t n = head_.is_quantized() ? 1 : 0;
  for (const LlamaLayer& l : layers_)
    for (const Linear* x : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) n += x->is_quantized() ? 1 : 0;
  return n;
}

int64_t LlamaModel::lora_linears() const {
  int64_t n = head_.has_lora() ? 1 : 0;
  for (const LlamaLayer& l : layers_)
    for (const Linear* x : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) n += x->has_lora() ? 1 : 0;
  return n;
}

KvCache LlamaModel::make_cache(int64_t capacity) const {
  return KvCache(config_.n_layer, cache_capacity(config_, capacity), config_.n_head_kv, config_.head_dim);
}

std::unique_ptr<KvCacheBase> LlamaModel::new_cache(int64_t capacity) const {
  return std::make_unique<KvCache>(make_cache(capacity));
}

// ---------------------------------------------------------------------------------------------
// Forward.

void LlamaModel::reserve(int64_t T) {
  if (T <= ws_.rows) return;
  const auto D = static_cast<size_t>(config_.hidden), I = static_cast<size_t>(config_.intermediate),
             Q = static_cast<size_t>(config_.n_head * config_.head_dim), n = static_cast<size_t>(T);
  ws_.x.resize(n * D);
  ws_.xn.resize(n * D);
  ws_.q.resize(n * Q);
  ws_.att.resize(n * Q);
  ws_.tmp.resize(n * D);
  ws_.gate.resize(n * I);
  ws_.up.resize(n * I);
  ws_.pos.resize(n);
  ws_.rows = T;
}

void LlamaModel::run_layer(int64_t il, int64_t T, KvCache& cache) {
  const Kernels& kn = kernels(backend_);
  const LlamaLayer& l = layers_[static_cast<size_t>(il)];
  const int64_t D = config_.hidden, H = config_.n_head, Hkv = config_.n_head_kv, Dh = config_.head_dim;
  const int64_t p0 = cache.pos;
  const auto eps = static_cast<float>(config_.rms_eps);
  // Attention block. This step's keys/values go straight into their cache rows p0..p0+T-1.
  float* k_new = cache.k(il) + p0 * Hkv * Dh;  // (T, Hkv, Dh)
  float* v_new = cache.v(il) + p0 * Hkv * Dh;  // (T, Hkv, Dh)
  kn.rmsnorm(ws_.xn.data(), ws_.x.data(), l.attn_norm.data(), T, D, eps);
  if (observer_) observer_(il, LinearInput::AttnIn, ws_.xn.data(), T, D);
  l.q.forward(ws_.q.data(), ws_.xn.data(), T, backend_);
  l.k.forward(k_new, ws_.xn.data(), T, backend_);
  l.v.forward(v_new, ws_.xn.data(), T, backend_);
  kn.rope(ws_.q.data(), ws_.pos.data(), inv_freq_.data(), T, H, Dh);
  kn.rope(k_new, ws_.pos.data(), inv_freq_.data(), T, Hkv, Dh);
  kn.attention(ws_.att.data(), ws_.q.data(), cache.k(il), cache.v(il), {T, p0, H, Hkv, Dh});
  if (observer_) observer_(il, LinearInput::AttnOut, ws_.att.data(), T, H * Dh);
  l.o.forward(ws_.tmp.data(), ws_.att.data(), T, backend_);
  add_to(ws_.x.data(), ws_.tmp.data(), T * D);
  // MLP block (SwiGLU).
  const int64_t I = config_.intermediate;
  kn.rmsnorm(ws_.xn.data(), ws_.x.data(), l.ffn_norm.data(), T, D, eps);
  if (observer_) observer_(il, LinearInput::FfnIn, ws_.xn.data(), T, D);
  l.gate.forward(ws_.gate.data(), ws_.xn.data(), T, backend_);
  l.up.forward(ws_.up.data(), ws_.xn.data(), T, backend_);
  kn.silu_mul(ws_.gate.data(), ws_.gate.data(), ws_.up.data(), T * I);
  if (observer_) observer_(il, LinearInput::FfnDown, ws_.gate.data(), T, I);
  l.down.forward(ws_.tmp.data(), ws_.gate.data(), T, backend_);
  add_to(ws_.x.data(), ws_.tmp.data(), T * D);
}

void LlamaModel::forward(const int32_t* tokens, int64_t T, KvCacheBase& base_cache, float* logits, LogitsMode mode) {
  auto* host_cache = dynamic_cast<KvCache*>(&base_cache);
  LORDS_CHECK(host_cache != nullptr, ErrorKind::Usage,
              "[forward] the KV cache was made by a model on another device; this model runs on the cpu");
  KvCache& cache = *host_cache;
  check_forward(config_, sliding_window_, tokens, T, cache);
  reserve(T);
  const Kernels& kn = kernels(backend_);
  const int64_t D = config_.hidden;
  kn.embedding(ws_.x.data(), embed_->data.data(), tokens, T, config_.vocab, D);
  for (int64_t t = 0; t < T; ++t) ws_.pos[static_cast<size_t>(t)] = cache.pos + t;
  for (int64_t il = 0; il < config_.n_layer; ++il) run_layer(il, T, cache);
  // Final norm and LM head, on the last row only when that is all the caller wants.
  const int64_t first = mode == LogitsMode::Last ? T - 1 : 0, rows = T - first;
  kn.rmsnorm(ws_.xn.data(), ws_.x.data() + first * D, out_norm_.data(), rows, D, static_cast<float>(config_.rms_eps));
  head_.forward(logits, ws_.xn.data(), rows, backend_);
  cache.pos += T;
}

}  // namespace lords::runtime
