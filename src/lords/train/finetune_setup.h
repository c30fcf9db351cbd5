// The parts of lords finetune (finetune.h) that run before the first update: option checks, the
// checkpoint a mode needs, defaults resolved against the data, the run fingerprint and the held-out
// evaluation.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "lords/train/finetune.h"

namespace lords::train {

// Error{Usage} naming the option for values outside their range or options that do not go together.
void finetune_check_options(const FinetuneOptions& o);

// Error{Usage} when the output exists (without overwrite), or when its run state exists without
// resume: both before any expensive work.
void finetune_check_outputs(const FinetuneOptions& o);

// Error{Usage} unless `dir` can serve mode: peft and qat need method lords, qlora a block-wise NF4
// checkpoint (rtn, nf, 4 bits) or a saved qlora output.
void finetune_check_checkpoint(const std::string& dir, TuneMode mode);
// The mode that evaluates dir as it is: qlora with adapters or an rtn base, else peft.
TuneMode mode_for_checkpoint(const std::string& dir);

// Options with the defaults that depend on the mode or the data filled in.
struct FinetunePlan {
  TuneMode mode = TuneMode::Peft;
  int64_t steps = 0, warmup = 0, scale_only_steps = 0;
  int64_t updates_per_epoch = 0;
  float lr = 0, scale_lr_mult = 1;
  int64_t lora_rank = 0;
  float lora_alpha = 0;
};
FinetunePlan finetune_plan(const FinetuneOptions& o, TuneMode mode, int64_t train_sequences);

// Everything that shapes the trajectory: resolved options, absolute input paths and a hash of the
// tokenized data (check_same_run compares it key by key).
nlohmann::json finetune_fingerprint(const FinetuneOptions& o,
                                    const FinetunePlan& plan,
                                    const TrainingData& data);

// Held-out loss of m over the first max_batches (0 = all) batches of B sequences of set, in order.
EvalResult evaluate_heldout(TrainModel<float>& m,
                            const SequenceSet& set,
                            int64_t B,
                            int64_t max_batches);

std::string format_count(int64_t n);   // 1234567 -> "1,234,567"
std::string format_seconds(double s);  // "42.1s", "3m07s", "2h05m"

}  // namespace lords::train
