#include "lords/core/atomic_output.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lords/core/error.h"

namespace fs = std::filesystem;

namespace lords {

AtomicDir::AtomicDir(std::string final_path, Existing existing)
    : final_(std::move(final_path)), existing_(existing) {
  while (final_.size() > 1 && final_.back() == '/') final_.pop_back();
  std::error_code ec;
  if (fs::exists(final_, ec)) {
    LORDS_CHECK(fs::is_directory(final_, ec), ErrorKind::Io, "{}: exists and is not a directory", final_);
    LORDS_CHECK(existing_ == Existing::Replace || fs::is_empty(final_, ec), ErrorKind::Usage,
                "{}: output directory exists and is not empty (pass --force to replace it)", final_);
  }
  const fs::path parent = fs::absolute(final_).parent_path();
  LORDS_CHECK(fs::is_directory(parent, ec), ErrorKind::Io, "{}: parent directory {} does not exist", final_,
              parent.string());
  tmp_ = final_ + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp_, ec);
  LORDS_CHECK(fs::create_directory(tmp_, ec), ErrorKind::Io, "{}: cannot create temporary directory: {}", tmp_,
              ec.message());
}

AtomicDir::~AtomicDir() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
}

void AtomicDir::commit() {
  std::error_code ec;
  std::string old;
  if (fs::exists(final_, ec)) {  // move the old one aside first so the rename below cannot fail on it
    old = final_ + ".old-" + std::to_string(::getpid());
    fs::rename(final_, old, ec);
    LORDS_CHECK(!ec, ErrorKind::Io, "{}: cannot move the existing output aside: {}", final_, ec.message());
  }
  fs::rename(tmp_, final_, ec);
  LORDS_CHECK(!ec, ErrorKind::Io, "{}: cannot rename {} into place: {}", final_, tmp_, ec.message());
  committed_ = true;
  if (!old.empty()) fs::remove_all(old, ec);
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  LORDS_CHECK(fd >= 0, ErrorKind::Io, "{}: cannot create: {}", tmp, std::strerror(errno));
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t w = ::write(fd, contents.data() + done, contents.size() - done);
    if (w <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      LORDS_FAIL(ErrorKind::Io, "{}: write failed: {}", tmp, std::strerror(err));
    }
    done += static_cast<size_t>(w);
  }
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    LORDS_FAIL(ErrorKind::Io, "{}: cannot write: {}", path, std::strerror(err));
  }
}

void copy_file_atomic(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  LORDS_CHECK(in.good(), ErrorKind::Io, "{}: cannot open for copying", from);
  std::ostringstream ss;
  ss << in.rdbuf();
  write_file_atomic(to, ss.str());
}

}  // namespace lords
