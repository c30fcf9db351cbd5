// Warm-up + cosine learning-rate schedule (see lr_schedule.h), evaluated in fp64.
#include "lords/train/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "lords/core/error.h"

namespace lords::train {

void lr_schedule_check(const LrSchedule& s) {
  LORDS_CHECK(
      s.peak_lr > 0.0f, ErrorKind::Usage, "[lr_schedule] peak_lr {}, expected > 0", s.peak_lr);
  LORDS_CHECK(s.warmup_steps >= 0,
              ErrorKind::Usage,
              "[lr_schedule] warmup_steps {}, expected >= 0",
              s.warmup_steps);
  LORDS_CHECK(s.total_steps > s.warmup_steps,
              ErrorKind::Usage,
              "[lr_schedule] total_steps {}, expected > warmup_steps {}",
              s.total_steps,
              s.warmup_steps);
  LORDS_CHECK(s.min_ratio >= 0.0f && s.min_ratio <= 1.0f,
              ErrorKind::Usage,
              "[lr_schedule] min_ratio {}, expected in [0, 1]",
              s.min_ratio);
}

float lr_schedule_at(const LrSchedule& s, int64_t step) {
  LORDS_ASSERT(step >= 0 && s.total_steps > s.warmup_steps);
  const double peak = s.peak_lr;
  if (step < s.warmup_steps)
    return static_cast<float>(peak * static_cast<double>(step + 1) /
                              static_cast<double>(s.warmup_steps));
  const double progress = std::min(1.0,
                                   static_cast<double>(step - s.warmup_steps) /
                                       static_cast<double>(s.total_steps - s.warmup_steps));
  const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));  // 1 -> 0
  const double min_ratio = s.min_ratio;
  return static_cast<float>(peak * (min_ratio + (1.0 - min_ratio) * cosine));
}

}  // namespace lords::train
