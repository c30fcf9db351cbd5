// Worker pool helpers. parallel_for runs fn(i) for i in [0, n) on `threads` std::threads pulling indices
// from an atomic counter; the first exception thrown by any worker is rethrown on join (STYLE 3.5).
#pragma once

#include <cstdint>
#include <functional>

namespace lords {

// fn(i, worker_id). threads <= 1 runs inline on the calling thread.
void parallel_for(int64_t n, int threads, const std::function<void(int64_t, int)>& fn);

// Threads to use by default: hardware concurrency (at least 1).
int default_threads();

// Sets the thread count used by OpenBLAS and OpenMP inside one worker.
void set_inner_threads(int threads);

}  // namespace lords
