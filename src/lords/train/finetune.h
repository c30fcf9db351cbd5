// `lords finetune`: fine-tunes a quantized checkpoint end to end. Data (data_load.h) -> TrainModel
// (train_model.h) -> AdamW (adamw.h) under warm-up + cosine (lr_schedule.h) -> the tuned
// checkpoint. One update (step s, 0-based) is
//   gather grad_accum micro-batches of B sequences (BatchIterator, shuffled per epoch by the seed)
//   grads = d/dparams of the loss-weighted mean cross-entropy over all of them (micro-batch i is
//           weighted by its share of the step's loss tokens, so accumulation equals one big batch)
//   clip the global gradient norm to `clip`, AdamW step with lr_schedule_at(s)
// Qat: B, A alone for the first qat_scale_only_steps updates, then W joins (LoRDS.md §1.5).
// Held-out loss (token-weighted mean over the held-out set, perplexity exp(loss)) before the first
// update, every eval_every updates, after the last, and of the output as saved.
// Outputs: peft/qat a lords checkpoint in the PTQ format, qlora the base plus adapters.safetensors
// (TrainModel::save), both written atomically at the end. Run state for --resume: every save_every
// updates `<output>.state/` (atomically replaced) holds the trainable parameters, the AdamW
// moments, the step, the data position, the running sums and a fingerprint of every option that
// shapes the trajectory; a resumed run continues bit for bit. It is deleted once the output is
// written.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lords/runtime/backend.h"
#include "lords/runtime/causal_lm.h"
#include "lords/train/data_load.h"
#include "lords/train/train_model.h"

namespace lords::train {

struct FinetuneOptions {
  // Inputs and output.
  std::string checkpoint;            // peft, qat: method lords; qlora: rtn NF4 (or a qlora output)
  std::vector<std::string> data;     // training files / directories (data_load.h)
  std::vector<std::string> heldout;  // held-out files; empty: split off `data`
  double heldout_fraction = 0.1;     // with no heldout files; 0 = no held-out evaluation
  SplitUnit split_unit = SplitUnit::Item;
  std::optional<PromptFormat> format;  // default: the tokenizer's (ChatML if it has the tokens)
  std::string system_prompt;           // ChatML system turn
  std::string output;                  // the tuned checkpoint (required unless eval_only)
  bool overwrite = false;              // replace an existing output
  std::optional<TuneMode> mode;        // required for training; eval_only picks it from the dir
  // Schedule.
  int64_t steps = 0;       // optimizer updates; 0 = one epoch
  int64_t batch = 4;       // B: sequences per micro-batch
  int64_t seq_len = 256;   // T
  int64_t grad_accum = 1;  // micro-batches per update
  float lr = 0;            // peak; 0 = the mode's default (kDefaultLr)
  int64_t warmup = -1;     // warm-up updates; -1 = 10 % of steps
  float min_lr_ratio = 0.1f;
  float weight_decay = 0;  // decoupled, on every trainable tensor
  double clip = 1.0;       // max global gradient norm; 0 = no clipping
  uint64_t seed = 0;       // data order, held-out split, LoRA init
  // Mode recipes.
  int64_t lora_rank = 16;  // qlora (a qlora output brings its own)
  float lora_alpha = 32;
  std::string match_params;  // qlora: a lords checkpoint of the same model; pick the LoRA rank
                             // whose trainable count is closest to peft's on it
  int64_t qat_scale_only_steps = -1;  // -1 = 20 % of steps (the paper: 250 of 1250)
  float scale_lr_mult = 0;            // lr multiplier of B, A; 0 = qat 4 (the paper), else 1
  std::string qat_base;               // qat: float model seeding the latent W
  // Evaluation and logging.
  int64_t eval_every = 0;    // 0 = before the first and after the last update only
  int64_t eval_batches = 0;  // held-out batches per evaluation; 0 = all
  int64_t log_every = 1;     // a progress line every k updates (and after the last)
  bool eval_only = false;    // evaluate the checkpoint on the held-out data; no training
  // Run state.
  int64_t save_every = 0;  // 0 = never
  bool resume = false;     // continue from <output>.state when present
  int64_t stop_at = 0;     // stop after this update with the run state saved (0 = run to the end)
  // Machine.
  int threads = 0;  // 0 = all cores
  Recompute recompute = Recompute::Layers;
  runtime::Backend backend = runtime::Backend::Cpu;
  // cuda: forward and backward on the GPU (the optimizer stays on the host). Not part of the run's
  // fingerprint: a run may resume on the other device (the same math, fp32 rounding apart).
  runtime::Device device = runtime::Device::Cpu;
  bool tf32 = false;  // cuda: the linears' GEMMs on TF32 tensor cores (10-bit mantissa products)
  std::function<void(const std::string&)> log;  // progress lines (none when empty)
};

// Peak learning rate when FinetuneOptions::lr is 0: peft 1e-4 and qlora 2e-4 (the usual LoRA range,
// LoRDS.md §1.6), qat 2e-5 (the paper's QAT).
float default_lr(TuneMode mode);

struct EvalResult {
  double loss = 0;    // loss-weighted mean cross-entropy (nats)
  double tokens = 0;  // loss weight counted (tokens for 0/1 weights)
  int64_t sequences = 0;
  double ppl() const;  // exp(loss)
  nlohmann::json to_json() const;
};

struct EvalPoint {
  int64_t step = 0;  // updates done when evaluated
  EvalResult eval;
};

struct FinetuneResult {
  std::string mode, checkpoint, output, format;
  int64_t total_steps = 0, steps_done = 0, resumed_from = 0;
  bool completed = false;  // false: stopped at stop_at, the run state holds the rest
  int64_t trainable_params = 0;
  int64_t lora_rank = 0;  // qlora
  int64_t train_sequences = 0, heldout_sequences = 0;
  int64_t train_tokens = 0;  // targets seen by all updates so far (padding excluded)
  double tokens_per_s = 0;   // this invocation's training throughput (counted target tokens)
  double positions_per_s = 0;  // the same over every position fed (B x T per micro-batch, masked too)
  double train_loss = 0;     // mean loss of the last logged window
  double last_grad_norm = 0;
  std::optional<EvalResult> initial_eval;  // held-out, before the first update
  std::optional<EvalResult> final_eval;    // held-out, of the output as saved (peft/qat round B, A
                                           // to the stored dtype; qat re-chooses the codes)
  std::vector<EvalPoint> evals;            // held-out evaluations of the training model, in order
  double wall_s = 0, train_s = 0;          // this invocation
  nlohmann::json to_json() const;
};

// Throws Error (one line naming the file or option) on bad options or input, before anything is
// written; the output and run state appear whole or not at all.
FinetuneResult finetune(const FinetuneOptions& options);

// --match-params: the LoRA rank whose qlora trainable count on `qlora_checkpoint` is closest to the
// LoRDS peft trainable count on `lords_checkpoint` (sum of r (N + K) over its quantized linears).
struct RankMatch {
  int64_t rank = 0;
  int64_t lords_params = 0;  // peft on the lords checkpoint
  int64_t lora_params = 0;   // qlora at `rank`
};
RankMatch match_lora_rank(const std::string& qlora_checkpoint, const std::string& lords_checkpoint);

}  // namespace lords::train
