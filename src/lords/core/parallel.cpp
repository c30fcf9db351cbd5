#include "lords/core/parallel.h"

#include <omp.h>

#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

extern "C" void openblas_set_num_threads(int);

namespace lords {

void parallel_for(int64_t n, int threads, const std::function<void(int64_t, int)>& fn) {
  if (threads <= 1 || n <= 1) {
    for (int64_t i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first_error;
  std::mutex error_mutex;
  auto worker = [&](int id) {
    while (!failed.load()) {
      const int64_t i = next.fetch_add(1);
      if (i >= n) return;
      try {
        fn(i, id);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  const int t = static_cast<int>(std::min<int64_t>(threads, n));
  for (int id = 0; id < t; ++id) pool.emplace_back(worker, id);
  for (auto& th : pool) th.join();
  if (first_error) std::rethrow_exception(first_error);
}

int default_threads() {
  const unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

void set_inner_threads(int threads) {
  openblas_set_num_threads(threads < 1 ? 1 : threads);
  omp_set_num_threads(threads < 1 ? 1 : threads);
}

}  // namespace lords
