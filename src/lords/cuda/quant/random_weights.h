// Seeded LLM-like random weights generated on the GPU (for benchmarks: host generation of 7 billion
// values would take longer than quantizing them). W[n, k] = r_n c_k t_nk with t Student-t(4) (heavy
// tails, as trained weights have), row scales r = exp(0.3 z) and column scales c = exp(0.3 z) / sqrt(K),
// the recipe of engine/bench_solvers.cpp's synthesize_matrix; the values differ (a counter-based hash
// instead of mt19937), the statistics do not.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace lords::cuda {

// W (N, K) device, row-major. Equal (seed, N, K) give equal matrices on every run and device.
void fill_llm_like_weights(float* W, int64_t N, int64_t K, uint64_t seed, cudaStream_t stream);

}  // namespace lords::cuda
