// Read-only memory-mapped file. Tensor readers keep one per file and read tensor bytes lazily from it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace lords::io {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws Error{Io} naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace lords::io
