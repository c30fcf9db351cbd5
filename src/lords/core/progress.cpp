#include "lords/core/progress.h"

#include <unistd.h>

#include <cstdio>

namespace lords {

Progress::Progress(std::string title, int64_t total, bool enabled)
    : title_(std::move(title)),
      total_(total),
      enabled_(enabled),
      tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()) {}

void Progress::tick(const std::string& item) {
  std::lock_guard<std::mutex> lock(mu_);
  ++done_;
  if (!enabled_ || total_ <= 0) return;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (tty_) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * done_ / total_);
    std::string bar(static_cast<size_t>(filled), '=');
    if (filled < kWidth) bar += '>';
    bar.resize(kWidth, ' ');
    std::fprintf(stderr, "\r%s [%s] %lld/%lld %-28.28s %6.1fs", title_.c_str(), bar.c_str(),
                 static_cast<long long>(done_), static_cast<long long>(total_), item.c_str(), secs);
    std::fflush(stderr);
  } else {
    const int64_t decile = done_ * 10 / total_;
    if (decile != last_logged_decile_) {
      last_logged_decile_ = decile;
      std::fprintf(stderr, "%s: %lld/%lld (%s) %.1fs\n", title_.c_str(), static_cast<long long>(done_),
                   static_cast<long long>(total_), item.c_str(), secs);
    }
  }
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (enabled_ && tty_) std::fprintf(stderr, "\n");
}

}  // namespace lords
