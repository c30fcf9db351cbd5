#include "lords/model/weight_table.h"

#include <set>

#include "lords/core/error.h"

namespace lords::model {
namespace {

void add_decoder_layer(const ModelConfig& c, int64_t i, std::vector<WeightSpec>* t) {
  const std::string hf = fmt::format("model.layers.{}.", i);
  const std::string blk = fmt::format("blk.{}.", i);
  const int64_t q_rows = c.n_head * c.head_dim, kv_rows = c.n_head_kv * c.head_dim;
  // Llama-architecture GGUFs store q/k rows permuted per rotary head; qwen2 GGUFs do not.
  const bool permuted = c.arch != Arch::Qwen2;
  auto add = [&](const std::string& ours, const std::string& theirs, Shape shape, WeightRole role,
                 int64_t rope_heads = 0, bool required = true) {
    t->push_back({blk + ours, hf + theirs, blk + ours, std::move(shape), role, required, rope_heads});
  };
  add("attn_norm.weight", "input_layernorm.weight", {c.hidden}, WeightRole::Norm);
  add("attn_q.weight", "self_attn.q_proj.weight", {q_rows, c.hidden}, WeightRole::Linear,
      permuted ? c.n_head : 0);
  add("attn_k.weight", "self_attn.k_proj.weight", {kv_rows, c.hidden}, WeightRole::Linear,
      permuted ? c.n_head_kv : 0);
  add("attn_v.weight", "self_attn.v_proj.weight", {kv_rows, c.hidden}, WeightRole::Linear);
  add("attn_output.weight", "self_attn.o_proj.weight", {c.hidden, q_rows}, WeightRole::Linear);
  if (c.arch == Arch::Qwen2) {
    add("attn_q.bias", "self_attn.q_proj.bias", {q_rows}, WeightRole::Bias);
    add("attn_k.bias", "self_attn.k_proj.bias", {kv_rows}, WeightRole::Bias);
    add("attn_v.bias", "self_attn.v_proj.bias", {kv_rows}, WeightRole::Bias);
  }
  add("ffn_norm.weight", "post_attention_layernorm.weight", {c.hidden}, WeightRole::Norm);
  add("ffn_gate.weight", "mlp.gate_proj.weight", {c.intermediate, c.hidden}, WeightRole::Linear);
  add("ffn_up.weight", "mlp.up_proj.weight", {c.intermediate, c.hidden}, WeightRole::Linear);
  add("ffn_down.weight", "mlp.down_proj.weight", {c.hidden, c.intermediate}, WeightRole::Linear);
}

// BERT encoders are supported for quantization only: the linears are listed, every other tensor is
// passed through as found. Internal names are the HF names.
void add_bert_layer(const ModelConfig& c, int64_t i, std::vector<WeightSpec>* t) {
  const std::string p = fmt::format("encoder.layer.{}.", i);
  auto add = [&](const std::string& name, Shape shape) {
    t->push_back({p + name, p + name, "", std::move(shape), WeightRole::Linear, true, 0});
  };
  add("attention.self.query.weight", {c.hidden, c.hidden});
  add("attention.self.key.weight", {c.hidden, c.hidden});
  add("attention.self.value.weight", {c.hidden, c.hidden});
  add("attention.output.dense.weight", {c.hidden, c.hidden});
  add("intermediate.dense.weight", {c.intermediate, c.hidden});
  add("output.dense.weight", {c.hidden, c.intermediate});
}

// Undo llama.cpp's permutation: GGUF row h*D + 2*i + j holds HF row h*D + j*D/2 + i.
void unpermute_rope_rows(HostTensor* t, int64_t heads) {
  const int64_t rows = t->shape[0], cols = t->numel() / rows, d = rows / heads, half = d / 2;
  std::vector<float> out(t->data.size());
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j) {
        const float* src = &t->data[static_cast<size_t>((h * d + 2 * i + j) * cols)];
        std::copy(src, src + cols, &out[static_cast<size_t>((h * d + j * half + i) * cols)]);
      }
  t->data.swap(out);
}

}  // namespace

std::vector<WeightSpec> weight_table(const ModelConfig& c) {
  std::vector<WeightSpec> t;
  if (c.arch == Arch::Bert) {
    for (int64_t i = 0; i < c.n_layer; ++i) add_bert_layer(c, i, &t);
    return t;
  }
  t.push_back({"token_embd.weight", "model.embed_tokens.weight", "token_embd.weight", {c.vocab, c.hidden},
               WeightRole::Embedding, true, 0});
  for (int64_t i = 0; i < c.n_layer; ++i) add_decoder_layer(c, i, &t);
  t.push_back({"output_norm.weight", "model.norm.weight", "output_norm.weight", {c.hidden}, WeightRole::Norm,
               true, 0});
  t.push_back({"output.weight", "lm_head.weight", "output.weight", {c.vocab, c.hidden}, WeightRole::Linear,
               !c.tie_embeddings, 0});
  return t;
}

std::vector<ResolvedWeight> resolve_weights(const io::ModelSource& src, const ModelConfig& config) {
  const bool gguf = src.kind == io::SourceKind::Gguf;
  std::vector<ResolvedWeight> out;
  std::set<std::string> used;
  for (const WeightSpec& spec : weight_table(config)) {
    const std::string& name = gguf ? spec.gguf : spec.hf;
    if (name.empty() || !src.index.contains(name)) {
      LORDS_CHECK(!spec.required, ErrorKind::Format, "{}: missing tensor '{}' required by {} (layer {})",
                  src.path, name.empty() ? spec.hf : name, config.model_type, spec.internal);
      continue;
    }
    const io::TensorInfo& info = src.index.at(name);
    LORDS_CHECK(info.shape == spec.shape, ErrorKind::BadShape, "{}: tensor '{}' has shape {}, expected {}",
                info.file->path(), name, shape_str(info.shape), shape_str(spec.shape));
    out.push_back({spec, name});
    used.insert(name);
  }
  for (const auto& [name, info] : src.index.all()) {
    if (used.count(name)) continue;
    // rope_freqs (Llama-3 GGUFs) holds precomputed rope factors: carried through under its own name.
    LORDS_CHECK(!gguf || name == "rope_freqs.weight", ErrorKind::Format,
                "{}: unknown tensor '{}' for architecture {}", info.file->path(), name, config.model_type);
    WeightSpec spec{name, name, gguf ? name : "", info.shape, WeightRole::Other, false, 0};
    out.push_back({spec, name});
  }
  return out;
}

HostTensor load_weight(const io::ModelSource& src, const ResolvedWeight& w) {
  HostTensor t = src.index.load_f32(w.source_name);
  if (src.kind == io::SourceKind::Gguf && w.spec.rope_heads > 0) unpermute_rope_rows(&t, w.spec.rope_heads);
  return t;
}

}  // namespace lords::model
