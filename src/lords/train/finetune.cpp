// lords finetune: the training loop (finetune.h). Setup lives in finetune_setup.cpp, the run state
// in finetune_state.cpp.
#include "lords/train/finetune.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include "lords/core/error.h"
#include "lords/core/parallel.h"
#include "lords/runtime/text_source.h"
#include "lords/train/finetune_setup.h"
#include "lords/train/finetune_state.h"
#include "lords/train/lr_schedule.h"

namespace lords::train {
namespace {

// The TrainModel options every model of a run shares (training, the output's and --eval-only's
// evaluation): mode, where and how it computes, and the LoRA init seed.
TrainModelOptions model_options(const FinetuneOptions& o, TuneMode mode) {
  TrainModelOptions mo;
  mo.mode = mode;
  mo.backend = o.backend;
  mo.device = o.device;
  mo.tf32 = o.tf32;
  mo.recompute = o.recompute;
  mo.lora_seed = o.seed;
  return mo;
}

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

void say(const FinetuneOptions& o, const std::string& line) {
  if (o.log) o.log(line);
}

DataSpec data_spec(const FinetuneOptions& o) {
  DataSpec s;
  s.train = o.data;
  s.heldout = o.heldout;
  s.heldout_fraction = o.heldout.empty() ? o.heldout_fraction : 0.0;
  s.split_seed = o.seed;
  s.split_unit = o.split_unit;
  s.T = o.seq_len;
  s.format = o.format;
  s.system_prompt = o.system_prompt;
  return s;
}

// Error{Usage} when a token of set is outside the model's vocabulary (a tokenizer of another
// model).
void check_vocab(const SequenceSet& set, int64_t V, const std::string& ckpt) {
  for (int32_t t : set.tokens)
    LORDS_CHECK(t >= 0 && t < V,
                ErrorKind::Usage,
                "[finetune] the data holds token id {}, outside the vocabulary ({}) of {}",
                t,
                V,
                ckpt);
}

// What the data is, for the log.
std::vector<std::string> data_lines(const TrainingData& d) {
  std::vector<std::string> out = {
      fmt::format("data: {} train / {} held-out sequences of {} tokens, format {}",
                  d.train.size(),
                  d.heldout.size(),
                  d.train.T,
                  prompt_format_name(d.format))};
  const SequenceStats& s = d.train.stats;
  if (s.truncated > 0 || s.dropped > 0)
    out.push_back(
        fmt::format("note: of {} training items {} were cut at --seq-len {} and {} dropped (no "
                    "response token within it)",
                    s.items,
                    s.truncated,
                    d.train.T,
                    s.dropped));
  return out;
}

std::string eval_line(int64_t step, int64_t total, const EvalResult& e) {
  return fmt::format("eval  {:>{}}/{}  held-out loss {:.4f}  ppl {:.3f}  ({} sequences)",
                     step,
                     std::to_string(total).size(),
                     total,
                     e.loss,
                     e.ppl(),
                     e.sequences);
}

// One fine-tuning run: the model, its optimizer and the data, from setup to the saved output.
class Trainer {
 public:
  Trainer(const FinetuneOptions& o, Clock::time_point start) : o_(o), start_(start) {}
  FinetuneResult run();

 private:
  void setup();
  // --resume: the saved run state into the model, optimizer and data position; a line to log.
  std::string restore();
  // A fresh run: the held-out loss before the first update.
  void start();
  // One update: grad_accum micro-batches, clipping, AdamW; adds the loss to the logging window.
  void update(int64_t step, double* grad_norm, int64_t* tokens);
  void after_update(int64_t step, double grad_norm, int64_t tokens, double secs);
  void evaluate(int64_t step);
  // The held-out loss of the output as written (peft/qat round B, A to the stored dtype, qat
  // re-chooses its codes); the training model is freed first.
  void evaluate_output();
  void save_state() const;
  FinetuneResult result(bool completed) const;

  const FinetuneOptions& o_;
  Clock::time_point start_;
  TuneMode mode_ = TuneMode::Peft;
  TrainingData data_;
  std::optional<TrainModel<float>> model_;
  std::optional<AdamW> adam_;
  std::optional<BatchIterator> it_;
  FinetunePlan plan_;
  LrSchedule sched_;
  nlohmann::json fingerprint_;
  RunProgress p_;
  int64_t resumed_from_ = 0, run_tokens_ = 0, run_positions_ = 0, trainable_ = 0;
  double train_s_ = 0, window_s_ = 0;
  int64_t window_tokens_ = 0;
  std::optional<EvalResult> final_eval_;
  std::vector<Batch> micro_;  // (grad_accum) the micro-batches of one update
};

void Trainer::setup() {
  // Everything that can fail on the options, the files or the data runs before the first line is
  // logged, so a mistake reads as one line.
  mode_ = *o_.mode;
  finetune_check_outputs(o_);
  finetune_check_checkpoint(o_.checkpoint, mode_);
  std::vector<std::string> lines = {
      fmt::format("finetune {}: {} -> {}", tune_mode_name(mode_), o_.checkpoint, o_.output)};
  TrainModelOptions mo = model_options(o_, mode_);
  mo.lora_rank = o_.lora_rank;
  mo.lora_alpha = o_.lora_alpha;
  mo.qat_base = o_.qat_base;
  if (!o_.match_params.empty()) {
    const RankMatch m = match_lora_rank(o_.checkpoint, o_.match_params);
    mo.lora_rank = m.rank;
    lines.push_back(
        fmt::format("--match-params: LoRDS peft on {} trains {} parameters; LoRA rank {} trains {}",
                    o_.match_params,
                    format_count(m.lords_params),
                    m.rank,
                    format_count(m.lora_params)));
  }
  const Tokenizer tok = runtime::load_model_tokenizer(o_.checkpoint);
  data_ = load_training_data(tok, data_spec(o_));
  for (std::string& l : data_lines(data_)) lines.push_back(std::move(l));
  plan_ = finetune_plan(o_, mode_, data_.train.size());
  model_.emplace(TrainModel<float>::load(o_.checkpoint, mo));
  const model::ModelConfig& c = model_->config();
  LORDS_CHECK(o_.seq_len <= c.max_pos,
              ErrorKind::Usage,
              "[finetune] --seq-len {} exceeds the model's max_position_embeddings {}",
              o_.seq_len,
              c.max_pos);
  check_vocab(data_.train, c.vocab, o_.checkpoint);
  check_vocab(data_.heldout, c.vocab, o_.checkpoint);

  plan_.lora_rank = model_->options().lora_rank;  // a qlora output brings its own
  plan_.lora_alpha = model_->options().lora_alpha;
  sched_ = {plan_.lr, plan_.warmup, plan_.steps, o_.min_lr_ratio};
  lr_schedule_check(sched_);
  GroupOptions g;
  g.scales_lr_scale = plan_.scale_lr_mult;
  g.scales_weight_decay = g.latent_weight_decay = g.lora_weight_decay = o_.weight_decay;
  adam_.emplace(model_->param_groups(g));
  it_.emplace(data_.train.size(), o_.batch, o_.seed);
  fingerprint_ = finetune_fingerprint(o_, plan_, data_);
  micro_.resize(static_cast<size_t>(o_.grad_accum));

  const std::string what =
      mode_ == TuneMode::Peft ? "LoRDS scales B, A"
      : mode_ == TuneMode::Qat
          ? "LoRDS scales B, A and latent W"
          : fmt::format("LoRA rank {} alpha {}", plan_.lora_rank, plan_.lora_alpha);
  trainable_ = model_->trainable_count();
  lines.push_back(fmt::format("trainable parameters: {} ({})", format_count(trainable_), what));
  lines.push_back(fmt::format(
      "schedule: {} updates of {} x {} sequences ({} per epoch), peak lr {:.3g}, warm-up {}, "
      "cosine to {:.3g}{}",
      plan_.steps,
      o_.grad_accum,
      o_.batch,
      plan_.updates_per_epoch,
      plan_.lr,
      plan_.warmup,
      plan_.lr * o_.min_lr_ratio,
      mode_ == TuneMode::Qat ? fmt::format(", B, A alone for {} updates (lr x{:g})",
                                           plan_.scale_only_steps,
                                           plan_.scale_lr_mult)
                             : ""));
  if (std::string r = restore(); !r.empty()) lines.push_back(std::move(r));
  for (const std::string& l : lines) say(o_, l);
}

std::string Trainer::restore() {
  const std::string dir = run_state_dir(o_.output);
  if (!o_.resume) return "";
  if (!std::filesystem::exists(dir))
    return fmt::format("no run state at {}: starting at update 0", dir);
  RunState s = load_run_state(dir);
  check_same_run(dir, s.fingerprint, fingerprint_);
  model_->load_param_arrays(s.arrays);
  adam_->load_state_arrays(s.arrays);
  LORDS_CHECK(s.progress.step == adam_->steps() && s.progress.step < plan_.steps,
              ErrorKind::Format,
              "[resume] {}: inconsistent run state (step {}, optimizer step {})",
              dir,
              s.progress.step,
              adam_->steps());
  p_ = std::move(s.progress);
  it_->seek(p_.data);
  resumed_from_ = p_.step;
  return fmt::format("resumed {} at update {}/{}", dir, p_.step, plan_.steps);
}

void Trainer::start() {
  if (resumed_from_ > 0 || data_.heldout.size() == 0) return;
  p_.initial_eval = evaluate_heldout(*model_, data_.heldout, o_.batch, o_.eval_batches);
  p_.evals.push_back({0, *p_.initial_eval});
  say(o_, eval_line(0, plan_.steps, *p_.initial_eval));
}

void Trainer::update(int64_t step, double* grad_norm, int64_t* tokens) {
  TrainModel<float>& m = *model_;
  if (mode_ == TuneMode::Qat)
    m.set_qat_phase(step < plan_.scale_only_steps ? QatPhase::ScalesOnly : QatPhase::Joint);
  // Every micro-batch first: each one's share of the update's loss weight scales its gradient.
  std::vector<double> weight(micro_.size(), 0.0);
  double total = 0;
  for (size_t i = 0; i < micro_.size(); ++i) {
    gather_batch(&micro_[i], data_.train, it_->next(), o_.batch);
    const Batch& b = micro_[i];
    for (size_t k = 0; k < b.targets.size(); ++k) {
      if (b.targets[k] < 0) continue;
      weight[i] += b.weights[k];
      ++*tokens;
    }
    total += weight[i];
  }
  m.zero_grad();
  double loss_sum = 0, loss_weight = 0;
  for (size_t i = 0; i < micro_.size(); ++i) {
    if (weight[i] <= 0) continue;
    const Batch& b = micro_[i];
    const CrossEntropyResult r = m.forward_backward(b.tokens.data(),
                                                    b.targets.data(),
                                                    b.weights.data(),
                                                    b.B,
                                                    b.T,
                                                    static_cast<float>(weight[i] / total));
    loss_sum += r.loss * r.count;
    loss_weight += r.count;
  }
  *grad_norm = o_.clip > 0 ? adam_->clip_grad_norm(o_.clip) : adam_->grad_norm();
  LORDS_CHECK(std::isfinite(*grad_norm),
              ErrorKind::Unsupported,
              "[finetune] update {}: the gradient norm is not finite (loss {}): lower --lr",
              step + 1,
              loss_weight > 0 ? loss_sum / loss_weight : 0.0);
  adam_->step(lr_schedule_at(sched_, step));
  p_.window_loss_sum += loss_sum;
  p_.window_loss_weight += loss_weight;
}

void Trainer::after_update(int64_t step, double grad_norm, int64_t tokens, double secs) {
  const int64_t done = step + 1;
  p_.step = done;
  p_.data = it_->position();
  p_.train_tokens += tokens;
  p_.last_grad_norm = grad_norm;
  ++p_.window_steps;
  window_tokens_ += tokens;
  window_s_ += secs;
  if (done % o_.log_every == 0 || done == plan_.steps) {
    p_.last_train_loss =
        p_.window_loss_weight > 0 ? p_.window_loss_sum / p_.window_loss_weight : 0.0;
    const double elapsed = train_s_, eta = elapsed / static_cast<double>(done - resumed_from_) *
                                           static_cast<double>(plan_.steps - done);
    say(o_,
        fmt::format("step  {:>{}}/{}  loss {:.4f}  lr {:.3e}  grad {:.3f}  {:.0f} tok/s  {} "
                    "(eta {})",
                    done,
                    std::to_string(plan_.steps).size(),
                    plan_.steps,
                    p_.last_train_loss,
                    lr_schedule_at(sched_, step),
                    grad_norm,
                    window_s_ > 0 ? static_cast<double>(window_tokens_) / window_s_ : 0.0,
                    format_seconds(seconds_since(start_)),
                    format_seconds(eta)));
    p_.window_loss_sum = p_.window_loss_weight = 0;
    p_.window_steps = 0;
    window_tokens_ = 0;
    window_s_ = 0;
  }
  if (o_.eval_every > 0 && done % o_.eval_every == 0 && done < plan_.steps) evaluate(done);
  if (o_.save_every > 0 && done % o_.save_every == 0 && done < plan_.steps) save_state();
}

void Trainer::evaluate(int64_t step) {
  if (data_.heldout.size() == 0) return;
  const EvalResult e = evaluate_heldout(*model_, data_.heldout, o_.batch, o_.eval_batches);
  p_.evals.push_back({step, e});
  say(o_, eval_line(step, plan_.steps, e));
}

void Trainer::save_state() const {
  NamedArrays arrays = model_->param_arrays();
  arrays.merge(adam_->state_arrays());
  save_run_state(run_state_dir(o_.output), fingerprint_, p_, arrays);
  say(o_, fmt::format("saved run state at update {} to {}", p_.step, run_state_dir(o_.output)));
}

FinetuneResult Trainer::result(bool completed) const {
  FinetuneResult r;
  r.mode = tune_mode_name(mode_);
  r.checkpoint = o_.checkpoint;
  r.output = o_.output;
  r.format = std::string(prompt_format_name(data_.format));
  r.total_steps = plan_.steps;
  r.steps_done = p_.step;
  r.resumed_from = resumed_from_;
  r.completed = completed;
  r.trainable_params = trainable_;
  r.lora_rank = mode_ == TuneMode::Qlora ? plan_.lora_rank : 0;
  r.train_sequences = data_.train.size();
  r.heldout_sequences = data_.heldout.size();
  r.train_tokens = p_.train_tokens;
  r.tokens_per_s = train_s_ > 0 ? static_cast<double>(run_tokens_) / train_s_ : 0.0;
  r.positions_per_s = train_s_ > 0 ? static_cast<double>(run_positions_) / train_s_ : 0.0;
  r.train_loss = p_.last_train_loss;
  r.last_grad_norm = p_.last_grad_norm;
  r.initial_eval = p_.initial_eval;
  r.final_eval = final_eval_;
  r.evals = p_.evals;
  r.wall_s = seconds_since(start_);
  r.train_s = train_s_;
  return r;
}

FinetuneResult Trainer::run() {
  setup();
  start();
  for (int64_t step = p_.step; step < plan_.steps; ++step) {
    if (o_.stop_at > 0 && step >= o_.stop_at) {
      save_state();
      return result(false);
    }
    const Clock::time_point t = Clock::now();
    double grad_norm = 0;
    int64_t tokens = 0;
    update(step, &grad_norm, &tokens);
    const double secs = seconds_since(t);
    train_s_ += secs;
    run_tokens_ += tokens;
    for (const Batch& b : micro_) run_positions_ += b.B * b.T;
    after_update(step, grad_norm, tokens, secs);
  }
  evaluate(p_.step);
  model_->save(o_.output,
               o_.overwrite ? AtomicDir::Existing::Replace : AtomicDir::Existing::Refuse);
  std::error_code ec;
  std::filesystem::remove_all(run_state_dir(o_.output), ec);  // the run is complete
  evaluate_output();
  return result(true);
}

void Trainer::evaluate_output() {
  if (data_.heldout.size() == 0) return;
  if (mode_ == TuneMode::Qlora) {  // adapters are stored in F32: the output is the model evaluated
    final_eval_ = p_.evals.back().eval;
    return;
  }
  adam_.reset();
  model_.reset();
  const TrainModelOptions mo = model_options(o_, TuneMode::Peft);  // a qat output is a plain lords checkpoint
  TrainModel<float> saved = TrainModel<float>::load(o_.output, mo);
  final_eval_ = evaluate_heldout(saved, data_.heldout, o_.batch, o_.eval_batches);
  say(o_,
      fmt::format("output {}: held-out loss {:.4f}  ppl {:.3f} (as saved)",
                  o_.output,
                  final_eval_->loss,
                  final_eval_->ppl()));
}

// --eval-only: the held-out loss of the checkpoint as it is (the split a training run would use).
FinetuneResult evaluate_only(const FinetuneOptions& o, Clock::time_point start) {
  const TuneMode mode = o.mode ? *o.mode : mode_for_checkpoint(o.checkpoint);
  finetune_check_checkpoint(o.checkpoint, mode);
  const Tokenizer tok = runtime::load_model_tokenizer(o.checkpoint);
  DataSpec spec = data_spec(o);
  if (o.data.empty()) {  // only held-out files: evaluate them whole
    spec.train = o.heldout;
    spec.heldout.clear();
    spec.heldout_fraction = 0;
  }
  const TrainingData data = load_training_data(tok, spec);
  const SequenceSet& set = o.data.empty() ? data.train : data.heldout;
  LORDS_CHECK(set.size() > 0,
              ErrorKind::Usage,
              "[finetune] --eval-only: no held-out data (pass --held-out FILE or "
              "--held-out-fraction > 0)");
  const TrainModelOptions mo = model_options(o, mode);
  TrainModel<float> m = TrainModel<float>::load(o.checkpoint, mo);
  check_vocab(set, m.config().vocab, o.checkpoint);
  FinetuneResult r;
  r.mode = tune_mode_name(mode);
  r.checkpoint = o.checkpoint;
  r.format = std::string(prompt_format_name(data.format));
  r.completed = true;
  r.trainable_params = m.trainable_count();
  r.lora_rank = mode == TuneMode::Qlora ? m.options().lora_rank : 0;
  r.heldout_sequences = set.size();
  r.final_eval = evaluate_heldout(m, set, o.batch, o.eval_batches);
  r.evals.push_back({0, *r.final_eval});
  say(o,
      fmt::format("held-out loss {:.4f}  ppl {:.3f}  ({} sequences)",
                  r.final_eval->loss,
                  r.final_eval->ppl(),
                  r.final_eval->sequences));
  r.wall_s = seconds_since(start);
  return r;
}

}  // namespace

FinetuneResult finetune(const FinetuneOptions& options) {
  const Clock::time_point start = Clock::now();
  finetune_check_options(options);
  set_inner_threads(options.threads > 0 ? options.threads : default_threads());
  if (options.eval_only) return evaluate_only(options, start);
  Trainer t(options, start);
  return t.run();
}

}  // namespace lords::train
