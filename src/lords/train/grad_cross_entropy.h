// Masked token cross-entropy over logits, forward and backward fused (the (M, V) logits are the
// largest activation; one pass over them does both, as in llm.c's fused classifier):
//   lse[m] = log sum_v exp logits[m,v],   loss[m] = lse[m] - logits[m, target[m]]
//   counted rows: target[m] >= 0 (so -1 and HF's -100 are ignored) and weight[m] > 0
//   count = sum_{counted} weight[m],      loss = sum_{counted} weight[m] loss[m] / count
//   dlogits[m,v] = weight[m] (softmax(logits[m])[v] - [v == target[m]]) / count   (OVERWRITTEN; 0 on
//                  rows not counted, everywhere when count == 0, which also returns loss 0)
// weights null means 1 for every row; a 0/1 mask gives the mean over unmasked (e.g. non-prompt) tokens.
// The gradient is of this call's mean: to average over several micro-batches, scale dlogits by
// count / total_count. dlogits may be null (loss only) or alias logits (in place). Max subtraction
// before exp in both backends.
//   ref:: templated on the float type; fp64 sums and loss.
//   cpu:: fp32 logits and exp, fp64 row sums and loss total; rows in parallel (OpenMP).
#pragma once

#include <cstdint>

namespace lords::train {

struct CrossEntropyResult {
  double loss = 0;   // weighted mean over counted rows (0 if none)
  double count = 0;  // sum of the counted rows' weights
};

// The weight row m carries in the mean: weights[m] (1 when weights is null) on a counted row, else 0.
inline double row_weight(const int32_t* targets, const float* weights, int64_t m) {
  const double w = weights ? weights[m] : 1.0;
  return targets[m] >= 0 && w > 0 ? w : 0.0;
}

// count of the mean over M rows: the sum of their row_weight.
inline double counted_weight(const int32_t* targets, const float* weights, int64_t M) {
  double total = 0;
  for (int64_t m = 0; m < M; ++m) total += row_weight(targets, weights, m);
  return total;
}

namespace ref {
// dlogits (M, V) or null, logits (M, V), targets (M) in [0, V) or negative, weights (M) >= 0 or null
template <class T>
CrossEntropyResult cross_entropy_fwd_bwd(T* dlogits, const T* logits, const int32_t* targets, const float* weights,
                                         int64_t M, int64_t V);
}  // namespace ref

namespace cpu {
CrossEntropyResult cross_entropy_fwd_bwd(float* dlogits, const float* logits, const int32_t* targets,
                                         const float* weights, int64_t M, int64_t V);
}  // namespace cpu

}  // namespace lords::train
