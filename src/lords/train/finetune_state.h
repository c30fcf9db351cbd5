// The run state of `lords finetune` (finetune.h), what --resume continues from:
//   <output>.state/state.safetensors   F32 1-D tensors "param.<name>" (TrainModel::param_arrays)
//   and
//                                      "optim.*" (AdamW::state_arrays); metadata
//     format       "lords-finetune-state", format_version "1"
//     run          JSON: the fingerprint, every option (resolved) that shapes the trajectory, plus
//                  a hash of the tokenized data; a resume must match it exactly
//     progress     JSON: RunProgress below
// The directory is replaced atomically (AtomicDir), so a run killed while saving keeps the previous
// state whole.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lords/train/adamw.h"
#include "lords/train/data_batches.h"
#include "lords/train/finetune.h"

namespace lords::train {

inline constexpr const char* kRunStateFormat = "lords-finetune-state";

// Everything of a run that is not a tensor. Sums are doubles written with 17 significant digits by
// nlohmann::json, so they round-trip exactly.
struct RunProgress {
  int64_t step = 0;          // updates done
  BatchPosition data;        // the micro-batch the next update starts with
  int64_t train_tokens = 0;  // targets seen by the updates done
  // The current logging window (updates since the last progress line).
  double window_loss_sum = 0, window_loss_weight = 0;
  int64_t window_steps = 0;
  double last_train_loss = 0, last_grad_norm = 0;
  std::optional<EvalResult> initial_eval;
  std::vector<EvalPoint> evals;
};

std::string run_state_dir(const std::string& output);  // output + ".state"

void save_run_state(const std::string& dir,
                    const nlohmann::json& fingerprint,
                    const RunProgress& progress,
                    const NamedArrays& arrays);

struct RunState {
  nlohmann::json fingerprint;
  RunProgress progress;
  NamedArrays arrays;
};
// Error{Format} naming the file for anything but a state written by save_run_state.
RunState load_run_state(const std::string& dir);

// Error{Usage} naming the first key whose value differs ("the run state is from another run").
void check_same_run(const std::string& dir, const nlohmann::json& saved, const nlohmann::json& now);

}  // namespace lords::train
