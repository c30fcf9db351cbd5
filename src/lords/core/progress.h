// A progress line on stderr: "[=====>    ] 42/210 blk.3.ffn_up 12.3s". Redrawn in place on a terminal;
// elsewhere (CI logs) printed every ~10% so logs stay short. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace lords {

class Progress {
 public:
  Progress(std::string title, int64_t total, bool enabled);
  void tick(const std::string& item);  // one unit done
  void finish();

 private:
  std::string title_;
  int64_t total_, done_ = 0, last_logged_decile_ = -1;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point start_;
  std::mutex mu_;
};

}  // namespace lords
