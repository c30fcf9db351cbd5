// Internal to lords::quant (lords_solver.cpp, lords_als.cpp): scratch buffers and the exact ALS sweep
// with a reusable workspace, so the refinement loop allocates nothing per step.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>

#include "lords/quant/codebook.h"
#include "lords/quant/lords_init.h"

namespace lords::quant::detail {

// Uninitialized float scratch (every element is written before it is read; skips a memset per buffer).
struct Scratch {
  std::unique_ptr<float[]> p;
  size_t n = 0;
  void resize(size_t want) {
    if (want > n) p.reset(new float[want]);
    n = std::max(n, want);
  }
  float* data() { return p.get(); }
};

// Workspace of als_sweep_ws, sized by als_prepare for one (N, K, r).
struct AlsWork {
  Scratch P;         // (max(N, K), T) outer products x_i x_j of the fixed factor, T = r(r+1)/2
  Scratch Gp;        // (max(N, K), T) packed normal matrices, one per row of the solved factor
  Scratch R;         // (max(N, K), r) right-hand sides
  Scratch X;         // (rows, K) row block of d L^2
  Scratch Y;         // (rows, K) row block of d L W
  int64_t rows = 0;  // row block height
};

void als_prepare(int64_t N, int64_t K, int64_t r, AlsWork* ws);
// One ALS sweep (B-step, then A-step) for fixed codes (N, K); d (K) or null. Updates sc in place.
void als_sweep_ws(const float* W, const uint8_t* codes, const Codebook& cb, const float* d, LowRankScale* sc,
                  AlsWork* ws);

}  // namespace lords::quant::detail
