// TrainModel::load: the weights come from runtime::LlamaModel::load (one loader for every consumer
// of a checkpoint), then each linear becomes a TrainableLinear of the mode's kind, in Real.
#include <array>
#include <filesystem>
#include <map>

#include "lords/core/error.h"
#include "lords/engine/checkpoint.h"
#include "lords/model/weight_table.h"
#include "lords/runtime/llama_model.h"
#include "lords/train/train_model.h"

#ifdef LORDS_HAVE_CUDA
#include "lords/train/gpu/gpu_train_engine.h"
#endif

namespace lords::train {
namespace {

template <class Real>
std::vector<Real> widen(const std::vector<float>& v) {
  return std::vector<Real>(v.begin(), v.end());
}

// The kind a quantized decoder linear takes in each mode.
LinearKind trained_kind(TuneMode m) {
  switch (m) {
    case TuneMode::Peft:
      return LinearKind::Lords;
    case TuneMode::Qat:
      return LinearKind::FakeQuant;
    case TuneMode::Qlora:
      return LinearKind::Lora;
  }
  return LinearKind::Quantized;
}

// The runtime linears of one layer in Slot order (q k v o gate up down) and their internal names.
constexpr const char* kSlotNames[] = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
std::array<const runtime::Linear*, 7> slots(const runtime::LlamaLayer& l) {
  return {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down};
}

}  // namespace

TuneMode tune_mode_from_name(const std::string& name) {
  if (name == "peft") return TuneMode::Peft;
  if (name == "qat") return TuneMode::Qat;
  if (name == "qlora") return TuneMode::Qlora;
  LORDS_FAIL(ErrorKind::Usage, "unknown fine-tuning mode '{}' (expected peft, qat or qlora)", name);
}

const char* tune_mode_name(TuneMode m) {
  switch (m) {
    case TuneMode::Peft:
      return "peft";
    case TuneMode::Qat:
      return "qat";
    case TuneMode::Qlora:
      return "qlora";
  }
  return "?";
}

template <class Real>
TrainModel<Real> TrainModel<Real>::load(const std::string& dir, const TrainModelOptions& opt) {
  constexpr bool kFloat = std::is_same_v<Real, float>;
  LORDS_CHECK(kFloat || opt.backend == runtime::Backend::Ref,
              ErrorKind::Usage,
              "[train] the fp64 model runs on the ref backend only");
  LORDS_CHECK(opt.head_rows >= 1,
              ErrorKind::Usage,
              "[train] head_rows must be >= 1, got {}",
              opt.head_rows);
  qlinear_tiles_check(opt.tiles);
  const engine::Checkpoint ck(dir);
  const std::string adapters = dir + "/" + kAdaptersFile;
  const bool has_adapters = std::filesystem::exists(adapters);
  LORDS_CHECK(!has_adapters || opt.mode == TuneMode::Qlora,
              ErrorKind::Usage,
              "[train] {} holds LoRA adapters ({}): load it in mode qlora, not {}",
              dir,
              kAdaptersFile,
              tune_mode_name(opt.mode));
  LORDS_CHECK(opt.mode == TuneMode::Qlora || ck.method() == engine::Method::Lords,
              ErrorKind::Usage,
              "[train] {}: mode {} trains LoRDS scales, but the checkpoint's method is {}",
              dir,
              tune_mode_name(opt.mode),
              engine::method_name(ck.method()));
  LORDS_CHECK(
      opt.mode != TuneMode::Qlora || has_adapters || (opt.lora_rank >= 1 && opt.lora_alpha > 0),
      ErrorKind::Usage,
      "[train] LoRA rank {} and alpha {} must be positive",
      opt.lora_rank,
      opt.lora_alpha);
  runtime::LlamaModel lm = runtime::LlamaModel::load(dir, runtime::Backend::Cpu);
  LORDS_CHECK(lm.quantized_linears() > 0,
              ErrorKind::Usage,
              "[train] {}: the checkpoint quantizes no linear, nothing would train",
              dir);

  TrainModel m;
  m.config_ = lm.config();
  m.opt_ = opt;
  m.ctx_ = {opt.backend, opt.tiles, opt.ste, QatPhase::Joint};
  m.source_dir_ = dir;
  m.sliding_window_ = lm.sliding_window();
  m.embed_ = std::make_shared<const std::vector<Real>>(widen<Real>(lm.embedding().data));
  std::map<std::string, std::string> hf_name;
  for (const model::WeightSpec& s : model::weight_table(m.config_)) hf_name[s.internal] = s.hf;
  auto convert = [&](const runtime::Linear& x, const std::string& internal, LinearKind kind) {
    std::optional<std::vector<Real>> bias;
    if (x.bias()) bias = widen<Real>(*x.bias());
    const std::string& name = hf_name.at(internal);
    if (x.is_quantized())
      return TrainableLinear<Real>::quantized(
          name, x.quantized_weight(), kind, std::move(bias), opt.backend);
    auto W = std::make_shared<const std::vector<Real>>(widen<Real>(x.dense_weight()->data));
    return TrainableLinear<Real>::dense(name, std::move(W), x.N(), x.K(), std::move(bias));
  };
  for (int64_t i = 0; i < m.config_.n_layer; ++i) {
    const runtime::LlamaLayer& src = lm.layers()[static_cast<size_t>(i)];
    Layer l;
    l.attn_norm = widen<Real>(src.attn_norm);
    l.ffn_norm = widen<Real>(src.ffn_norm);
    const auto lin = slots(src);
    for (int s = 0; s < kSlots; ++s)
      l.lin[static_cast<size_t>(s)] = convert(*lin[static_cast<size_t>(s)],
                                              fmt::format("blk.{}.{}.weight", i, kSlotNames[s]),
                                              trained_kind(opt.mode));
    m.layers_.push_back(std::move(l));
  }
  m.out_norm_ = widen<Real>(lm.output_norm());
  // A quantized head trains like the decoder linears, except under QLoRA (adapters on the decoder
  // blocks only, as peft's target_modules). A tied dense head shares the embedding.
  if (lm.head().is_quantized()) {
    m.head_ = convert(lm.head(),
                      "output.weight",
                      opt.mode == TuneMode::Qlora ? LinearKind::Quantized : trained_kind(opt.mode));
  } else if (m.config_.tie_embeddings) {
    m.head_ = TrainableLinear<Real>::dense(
        hf_name.at("output.weight"), m.embed_, m.config_.vocab, m.config_.hidden, std::nullopt);
  } else {
    m.head_ = convert(lm.head(), "output.weight", LinearKind::Dense);
  }
  m.inv_freq_ = lm.inv_freq();

  if (opt.mode == TuneMode::Qlora) {
    if (has_adapters) {
      m.load_adapters(adapters);
    } else {
      uint64_t i = 0;
      for (TrainableLinear<Real>* l : m.linears())
        if (l->kind() == LinearKind::Lora)
          l->set_lora(opt.lora_rank, opt.lora_alpha, nullptr, nullptr, opt.lora_seed + i++);
    }
  }
  if (opt.mode == TuneMode::Qat && !opt.qat_base.empty()) {
    // The float model's weights, linear by linear in the same order.
    runtime::LlamaModel base = runtime::LlamaModel::load(opt.qat_base, runtime::Backend::Cpu);
    LORDS_CHECK(base.config().hidden == m.config_.hidden &&
                    base.config().n_layer == m.config_.n_layer &&
                    base.config().vocab == m.config_.vocab,
                ErrorKind::Usage,
                "[train] qat base {} is not the model of checkpoint {}",
                opt.qat_base,
                dir);
    std::vector<const runtime::Linear*> src;
    for (const runtime::LlamaLayer& l : base.layers())
      for (const runtime::Linear* x : slots(l)) src.push_back(x);
    src.push_back(&base.head());
    const std::vector<TrainableLinear<Real>*> dst = m.linears();
    for (size_t i = 0; i < dst.size(); ++i) {
      if (dst[i]->kind() != LinearKind::FakeQuant) continue;
      const HostTensor* W = src[i]->dense_weight();
      LORDS_CHECK(W != nullptr && src[i]->N() == dst[i]->N() && src[i]->K() == dst[i]->K(),
                  ErrorKind::Usage,
                  "[train] qat base {}: '{}' must be a dense [{}, {}] weight",
                  opt.qat_base,
                  dst[i]->name(),
                  dst[i]->N(),
                  dst[i]->K());
      dst[i]->set_latent(W->data.data());
    }
  }
  LORDS_CHECK(!opt.tf32 || opt.device == runtime::Device::Cuda,
              ErrorKind::Usage,
              "[train] tf32 is a setting of device cuda");
  if (opt.device == runtime::Device::Cuda) {
    LORDS_CHECK(kFloat && opt.backend == runtime::Backend::Cpu,
                ErrorKind::Usage,
                "[train] device cuda trains the fp32 model with the cpu backend on the host side");
    if constexpr (kFloat) {
#ifdef LORDS_HAVE_CUDA
      m.gpu_ = make_gpu_train_engine(m);  // after every weight above is final
#else
      LORDS_FAIL(ErrorKind::Unsupported,
                 "[train] device cuda: this build has no CUDA (configure where nvcc is installed)");
#endif
    }
  }
  return m;
}

template TrainModel<float> TrainModel<float>::load(const std::string&, const TrainModelOptions&);
template TrainModel<double> TrainModel<double>::load(const std::string&, const TrainModelOptions&);

}  // namespace lords::train
