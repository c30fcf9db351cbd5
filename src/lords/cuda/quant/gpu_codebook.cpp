#include "lords/cuda/quant/gpu_codebook.h"

#include "lords/core/error.h"
#include "lords/quant/nearest_kernel.h"

namespace lords::cuda {

static_assert(kGpuTinyScale == quant::detail::kTinyScale, "GPU and CPU Q-steps must share the zero-scale rule");

GpuCodebook gpu_codebook(const quant::Codebook& cb) {
  LORDS_CHECK(cb.size() >= 2 && cb.size() <= 16 && cb.midpoints.size() + 1 == cb.levels.size(),
              ErrorKind::Unsupported, "[gpu_codebook] {}: {} levels, the GPU kernels take 2 to 16", cb.name(),
              cb.size());
  GpuCodebook g{};
  g.n_levels = cb.size();
  for (int i = 0; i < g.n_levels; ++i) g.levels[i] = cb.levels[static_cast<size_t>(i)];
  for (int i = 0; i + 1 < g.n_levels; ++i) g.mid[i] = cb.midpoints[static_cast<size_t>(i)];
  g.zero = cb.nearest(0.0f);
  return g;
}

}  // namespace lords::cuda
