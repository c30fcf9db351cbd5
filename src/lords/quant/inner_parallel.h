// Internal to lords::quant: the row-parallel loops of the quantization math. They run on the inner
// thread count that the caller sets with set_inner_threads (OpenMP's nthreads ICV, shared with OpenBLAS),
// but on short-lived std::threads (lords::parallel_for) rather than an OpenMP team: idle OpenMP workers
// spin-wait after each region and take cores away from the OpenBLAS calls that follow, which made one
// ALS sweep 2.4x slower on 2 cores.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "lords/core/parallel.h"

namespace lords::quant::detail {

inline int inner_threads() { return std::max(1, omp_get_max_threads()); }

// fn(begin, end) over contiguous chunks of [0, n), each at least min_chunk items (so small problems stay
// on the calling thread). Chunks are fixed by n and the thread count, never by timing.
template <class Fn>
void parallel_chunks(int64_t n, int64_t min_chunk, const Fn& fn) {
  const int threads = inner_threads();
  const int64_t chunks = std::min<int64_t>(int64_t{4} * threads, n / std::max<int64_t>(min_chunk, 1));
  if (threads <= 1 || chunks <= 1) {
    if (n > 0) fn(int64_t{0}, n);
    return;
  }
  const int64_t per = (n + chunks - 1) / chunks;
  parallel_for(chunks, static_cast<int>(std::min<int64_t>(threads, chunks)), [&](int64_t c, int) {
    const int64_t begin = c * per;
    if (begin < n) fn(begin, std::min(n, begin + per));
  });
}

// Rows per chunk so that a chunk holds at least ~64k elements of a (rows, K) matrix.
inline int64_t rows_per_chunk(int64_t K) { return std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(K, 1)); }

}  // namespace lords::quant::detail
