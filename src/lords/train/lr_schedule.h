// Learning-rate schedule: linear warm-up, then cosine decay to peak_lr * min_ratio (llm.c's
// train_gpt2 schedule). For the 0-based index s of the update about to be taken:
//   s < W:      lr = peak (s + 1) / W                      (the first update is not wasted at 0)
//   otherwise:  p = min(1, (s - W) / (T - W)),  lr = peak (min + (1 - min) (1 + cos(pi p)) / 2)
// W = warmup_steps, T = total_steps: the peak is reached at s = W - 1 and s = W, the floor at s = T
// (the last update, s = T - 1, is just above it). min_ratio = 1 gives warm-up then constant.
#pragma once

#include <cstdint>

namespace lords::train {

struct LrSchedule {
  float peak_lr = 1e-4f;
  int64_t warmup_steps = 0;  // >= 0
  int64_t total_steps = 1;   // > warmup_steps
  float min_ratio = 0.0f;    // in [0, 1]
};

// Throws Error{Usage} on a negative warm-up, total <= warm-up, peak_lr <= 0 or min_ratio outside
// [0, 1].
void lr_schedule_check(const LrSchedule& s);
// lr for update index step >= 0 (steps past total_steps stay at the floor).
float lr_schedule_at(const LrSchedule& s, int64_t step);

}  // namespace lords::train
