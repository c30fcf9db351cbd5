// lords finetune before the first update (finetune_setup.h), and the JSON of its results.
#include "lords/train/finetune_setup.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "lords/core/error.h"
#include "lords/engine/checkpoint.h"
#include "lords/train/finetune_state.h"

namespace lords::train {
namespace {

namespace fs = std::filesystem;

bool has_adapters(const std::string& dir) {
  return fs::exists(dir + "/" + kAdaptersFile);
}

std::string absolute(const std::string& path) {
  return fs::weakly_canonical(fs::absolute(path)).string();
}

// FNV-1a (64 bit) over raw bytes: a fingerprint of the tokenized data, not a secure hash.
void fnv1a(uint64_t* h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) *h = (*h ^ p[i]) * 1099511628211ull;
}

template <class V>
void hash_vector(uint64_t* h, const std::vector<V>& v) {
  fnv1a(h, v.data(), v.size() * sizeof(V));
}

}  // namespace

float default_lr(TuneMode mode) {
  switch (mode) {
    case TuneMode::Peft:
      return 1e-4f;
    case TuneMode::Qat:
      return 2e-5f;
    case TuneMode::Qlora:
      return 2e-4f;
  }
  return 1e-4f;
}

void finetune_check_options(const FinetuneOptions& o) {
  const auto need = [](bool ok, const char* what, auto value) {
    LORDS_CHECK(ok, ErrorKind::Usage, "[finetune] {} (got {})", what, value);
  };
  const auto require = [](bool ok, const char* what) {
    LORDS_CHECK(ok, ErrorKind::Usage, "[finetune] {}", what);
  };
  require(!o.checkpoint.empty(), "a checkpoint is required");
  require(!o.data.empty() || (o.eval_only && !o.heldout.empty()), "--data FILE_OR_DIR is required");
  require(o.mode.has_value() || o.eval_only, "--mode peft|qat|qlora is required");
  require(!o.output.empty() || o.eval_only, "-o OUT is required");
  need(o.steps >= 0, "--steps must be >= 0 (0 = one epoch)", o.steps);
  need(o.batch >= 1, "--batch must be >= 1", o.batch);
  need(o.seq_len >= 2, "--seq-len must be >= 2", o.seq_len);
  need(o.grad_accum >= 1, "--grad-accum must be >= 1", o.grad_accum);
  need(o.lr >= 0 && std::isfinite(o.lr), "--lr must be >= 0 (0 = the mode's default)", o.lr);
  need(o.warmup >= -1, "--warmup must be >= 0 (-1 = 10% of the steps)", o.warmup);
  need(o.min_lr_ratio >= 0 && o.min_lr_ratio <= 1,
       "--min-lr-ratio must be in [0, 1]",
       o.min_lr_ratio);
  need(o.weight_decay >= 0, "--weight-decay must be >= 0", o.weight_decay);
  need(o.clip >= 0, "--clip must be >= 0 (0 = no clipping)", o.clip);
  need(o.heldout_fraction >= 0 && o.heldout_fraction < 1,
       "--held-out-fraction must be in [0, 1)",
       o.heldout_fraction);
  need(o.lora_rank >= 1, "--lora-rank must be >= 1", o.lora_rank);
  need(o.lora_alpha > 0, "--lora-alpha must be > 0", o.lora_alpha);
  need(o.qat_scale_only_steps >= -1,
       "--qat-scale-only-steps must be >= 0 (-1 = 20% of the steps)",
       o.qat_scale_only_steps);
  need(o.scale_lr_mult >= 0,
       "--scale-lr-mult must be >= 0 (0 = the mode's default)",
       o.scale_lr_mult);
  need(o.eval_every >= 0, "--eval-every must be >= 0", o.eval_every);
  need(o.eval_batches >= 0, "--eval-batches must be >= 0 (0 = all)", o.eval_batches);
  need(o.log_every >= 1, "--log-every must be >= 1", o.log_every);
  need(o.save_every >= 0, "--save-every must be >= 0", o.save_every);
  need(o.stop_at >= 0, "--stop-at must be >= 0", o.stop_at);
  need(o.threads >= 0, "--threads must be >= 0 (0 = all cores)", o.threads);
  if (o.mode) {
    LORDS_CHECK(o.match_params.empty() || *o.mode == TuneMode::Qlora,
                ErrorKind::Usage,
                "[finetune] --match-params picks a LoRA rank: mode qlora only, not {}",
                tune_mode_name(*o.mode));
    LORDS_CHECK(o.qat_base.empty() || *o.mode == TuneMode::Qat,
                ErrorKind::Usage,
                "[finetune] --qat-base seeds QAT's latent weights: mode qat only, not {}",
                tune_mode_name(*o.mode));
  }
  require(!(o.stop_at > 0 || o.resume || o.save_every > 0) || !o.eval_only,
          "--eval-only trains nothing: no --save-every, --resume or --stop-at");
}

void finetune_check_outputs(const FinetuneOptions& o) {
  std::error_code ec;
  std::string out = o.output;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  const fs::path parent = fs::absolute(out).parent_path();
  LORDS_CHECK(fs::is_directory(parent, ec),
              ErrorKind::Io,
              "[finetune] {}: parent directory {} does not exist",
              o.output,
              parent.string());
  const bool exists = fs::exists(o.output, ec);
  LORDS_CHECK(!exists || o.overwrite || (fs::is_directory(o.output) && fs::is_empty(o.output, ec)),
              ErrorKind::Usage,
              "[finetune] {}: output exists (pass --force to replace it)",
              o.output);
  const std::string state = run_state_dir(o.output);
  LORDS_CHECK(
      !fs::exists(state, ec) || o.resume,
      ErrorKind::Usage,
      "[finetune] {}: holds the run state of an unfinished run: pass --resume to continue it, "
      "or delete it",
      state);
}

void finetune_check_checkpoint(const std::string& dir, TuneMode mode) {
  const engine::Checkpoint ck(dir);
  if (mode != TuneMode::Qlora) {
    LORDS_CHECK(!has_adapters(dir),
                ErrorKind::Usage,
                "[finetune] {}: holds LoRA adapters (a qlora output): mode {} needs a lords "
                "checkpoint",
                dir,
                tune_mode_name(mode));
    LORDS_CHECK(
        ck.method() == engine::Method::Lords,
        ErrorKind::Usage,
        "[finetune] {}: mode {} trains LoRDS scales B, A, but the checkpoint's method is {} "
        "(quantize with --method lords)",
        dir,
        tune_mode_name(mode),
        engine::method_name(ck.method()));
    return;
  }
  // QLoRA's base is block-wise: NF4 is the paper's; 3- and 2-bit block-wise bases give the low-bit
  // comparisons (LoRDS.md §1.6), where QLoRA degrades.
  LORDS_CHECK(ck.method() == engine::Method::Rtn || has_adapters(dir),
              ErrorKind::Usage,
              "[finetune] {}: mode qlora needs a block-wise base (lords quantize --method rtn, e.g. "
              "--codebook nf --bits 4), got method {} {}",
              dir,
              engine::method_name(ck.method()),
              ck.codebook().name());
}

TuneMode mode_for_checkpoint(const std::string& dir) {
  if (has_adapters(dir)) return TuneMode::Qlora;
  const engine::Checkpoint ck(dir);
  return ck.method() == engine::Method::Lords ? TuneMode::Peft : TuneMode::Qlora;
}

RankMatch match_lora_rank(const std::string& qlora_checkpoint,
                          const std::string& lords_checkpoint) {
  const engine::Checkpoint base(qlora_checkpoint), lords(lords_checkpoint);
  LORDS_CHECK(lords.method() == engine::Method::Lords,
              ErrorKind::Usage,
              "[--match-params] {}: not a LoRDS checkpoint (method {})",
              lords_checkpoint,
              engine::method_name(lords.method()));
  LORDS_CHECK(!has_adapters(qlora_checkpoint),
              ErrorKind::Usage,
              "[--match-params] {}: already holds adapters, whose rank is fixed",
              qlora_checkpoint);
  const auto shape = [](const nlohmann::json& info) {
    return std::pair(info.at("shape").at(0).get<int64_t>(), info.at("shape").at(1).get<int64_t>());
  };
  RankMatch m;
  for (const auto& [name, info] : lords.layer_table().items()) {
    const auto [N, K] = shape(info);
    m.lords_params += info.at("rank").get<int64_t>() * (N + K);
  }
  // QLoRA adapts the quantized linears of the decoder blocks (not a quantized head).
  int64_t per_rank = 0;
  for (const auto& [name, info] : base.layer_table().items()) {
    if (name == "lm_head.weight") continue;
    LORDS_CHECK(lords.is_quantized(name) && shape(lords.layer_table().at(name)) == shape(info),
                ErrorKind::Usage,
                "[--match-params] {} is not the model of {} (linear '{}' differs)",
                lords_checkpoint,
                qlora_checkpoint,
                name);
    const auto [N, K] = shape(info);
    per_rank += N + K;
  }
  LORDS_CHECK(per_rank > 0,
              ErrorKind::Usage,
              "[--match-params] {}: no quantized linear in the decoder blocks",
              qlora_checkpoint);
  m.rank = std::max<int64_t>(1, (m.lords_params + per_rank / 2) / per_rank);
  m.lora_params = m.rank * per_rank;
  return m;
}

FinetunePlan finetune_plan(const FinetuneOptions& o, TuneMode mode, int64_t train_sequences) {
  FinetunePlan p;
  p.mode = mode;
  const int64_t batches = (train_sequences + o.batch - 1) / o.batch;
  p.updates_per_epoch = (batches + o.grad_accum - 1) / o.grad_accum;
  p.steps = o.steps > 0 ? o.steps : p.updates_per_epoch;
  p.warmup = o.warmup >= 0 ? o.warmup : p.steps / 10;
  LORDS_CHECK(p.warmup < p.steps,
              ErrorKind::Usage,
              "[finetune] --warmup {} must be below the number of updates {}",
              p.warmup,
              p.steps);
  p.lr = o.lr > 0 ? o.lr : default_lr(mode);
  p.scale_lr_mult = o.scale_lr_mult > 0 ? o.scale_lr_mult : mode == TuneMode::Qat ? 4.0f : 1.0f;
  if (mode == TuneMode::Qat) {
    p.scale_only_steps = o.qat_scale_only_steps >= 0 ? o.qat_scale_only_steps : p.steps / 5;
    LORDS_CHECK(p.scale_only_steps <= p.steps,
                ErrorKind::Usage,
                "[finetune] --qat-scale-only-steps {} exceeds the number of updates {}",
                p.scale_only_steps,
                p.steps);
  }
  p.lora_rank = o.lora_rank;
  p.lora_alpha = o.lora_alpha;
  return p;
}

nlohmann::json finetune_fingerprint(const FinetuneOptions& o,
                                    const FinetunePlan& plan,
                                    const TrainingData& data) {
  std::vector<std::string> train, held;
  for (const std::string& f : data.train_files) train.push_back(absolute(f));
  for (const std::string& f : data.heldout_files) held.push_back(absolute(f));
  uint64_t h = 1469598103934665603ull;
  for (const SequenceSet* s : {&data.train, &data.heldout}) {
    hash_vector(&h, s->tokens);
    hash_vector(&h, s->targets);
    hash_vector(&h, s->weights);
  }
  const bool qlora = plan.mode == TuneMode::Qlora, qat = plan.mode == TuneMode::Qat;
  return {{"checkpoint", absolute(o.checkpoint)},
          {"mode", tune_mode_name(plan.mode)},
          {"backend", runtime::backend_name(o.backend)},
          {"data", train},
          {"held_out", held},
          {"held_out_fraction", o.heldout.empty() ? o.heldout_fraction : 0.0},
          {"split_unit", o.split_unit == SplitUnit::Item ? "item" : "file"},
          {"format", std::string(prompt_format_name(data.format))},
          {"system_prompt", o.system_prompt},
          {"data_tokens_hash", fmt::format("{:016x}", h)},
          {"train_sequences", data.train.size()},
          {"steps", plan.steps},
          {"batch", o.batch},
          {"seq_len", o.seq_len},
          {"grad_accum", o.grad_accum},
          {"lr", plan.lr},
          {"warmup", plan.warmup},
          {"min_lr_ratio", o.min_lr_ratio},
          {"weight_decay", o.weight_decay},
          {"clip", o.clip},
          {"seed", o.seed},
          {"scale_lr_mult", plan.scale_lr_mult},
          {"lora_rank", qlora ? plan.lora_rank : 0},
          {"lora_alpha", qlora ? plan.lora_alpha : 0.0f},
          {"qat_scale_only_steps", plan.scale_only_steps},
          {"qat_base", qat && !o.qat_base.empty() ? absolute(o.qat_base) : ""}};
}

EvalResult evaluate_heldout(TrainModel<float>& m,
                            const SequenceSet& set,
                            int64_t B,
                            int64_t max_batches) {
  EvalResult r;
  const int64_t n = set.size();
  int64_t batches = (n + B - 1) / B;
  if (max_batches > 0) batches = std::min(batches, max_batches);
  double sum = 0;
  Batch batch;
  std::vector<int64_t> rows;
  for (int64_t b = 0; b < batches; ++b) {
    rows.clear();
    for (int64_t i = b * B; i < std::min(n, (b + 1) * B); ++i) rows.push_back(i);
    const auto rb = static_cast<int64_t>(rows.size());
    gather_batch(&batch, set, rows, rb);
    const CrossEntropyResult ce =
        m.eval_loss(batch.tokens.data(), batch.targets.data(), batch.weights.data(), rb, set.T);
    sum += ce.loss * ce.count;
    r.tokens += ce.count;
    r.sequences += rb;
  }
  r.loss = r.tokens > 0 ? sum / r.tokens : 0.0;
  return r;
}

double EvalResult::ppl() const {
  return std::exp(loss);
}

nlohmann::json EvalResult::to_json() const {
  return {{"loss", loss}, {"ppl", ppl()}, {"tokens", tokens}, {"sequences", sequences}};
}

nlohmann::json FinetuneResult::to_json() const {
  nlohmann::json evals_j = nlohmann::json::array();
  for (const EvalPoint& e : evals) {
    nlohmann::json j = e.eval.to_json();
    j["step"] = e.step;
    evals_j.push_back(j);
  }
  nlohmann::json j = {{"mode", mode},
                      {"checkpoint", checkpoint},
                      {"output", completed ? output : ""},
                      {"format", format},
                      {"completed", completed},
                      {"total_steps", total_steps},
                      {"steps_done", steps_done},
                      {"resumed_from", resumed_from},
                      {"trainable_params", trainable_params},
                      {"train_sequences", train_sequences},
                      {"held_out_sequences", heldout_sequences},
                      {"train_tokens", train_tokens},
                      {"tokens_per_s", tokens_per_s},
                      {"positions_per_s", positions_per_s},
                      {"train_loss", train_loss},
                      {"grad_norm", last_grad_norm},
                      {"initial", initial_eval ? initial_eval->to_json() : nlohmann::json()},
                      {"final", final_eval ? final_eval->to_json() : nlohmann::json()},
                      {"evals", evals_j},
                      {"wall_s", wall_s},
                      {"train_s", train_s}};
  if (lora_rank > 0) j["lora_rank"] = lora_rank;
  return j;
}

std::string format_count(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string format_seconds(double s) {
  if (s < 60) return fmt::format("{:.1f}s", s);
  const auto t = static_cast<int64_t>(s + 0.5);
  if (t < 3600) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}h{:02d}m", t / 3600, (t % 3600) / 60);
}

}  // namespace lords::train
