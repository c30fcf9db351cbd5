// safetensors: 8-byte little-endian header length, JSON header {name: {dtype, shape, data_offsets}},
// optional "__metadata__" (string -> string), then the data block. Spec: huggingface/safetensors README.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lords/core/dtype.h"
#include "lords/io/tensor_index.h"

namespace lords::io {

// Adds every tensor of `path` to index; returns the file's __metadata__ map (empty if absent).
// Validates everything a lying file can get wrong: header length vs file size, JSON syntax, dtype names,
// shape x dtype vs byte count, offsets inside the data block, overlaps. Errors name the file and the problem.
std::map<std::string, std::string> read_safetensors(const std::string& path, TensorIndex* index);

// The number stored in __metadata__ under key, or else under alt_key (another writer's name for it).
// Throws Error{Format} naming path when neither is present or the value is not a number.
double metadata_number(const std::map<std::string, std::string>& meta, const std::string& key,
                       const std::string& alt_key, const std::string& path);

// Writes a safetensors file in one pass with bounded memory: declare every tensor first (name, dtype,
// shape), then write each tensor's bytes in any order and from any thread, then commit().
// Data goes to "<path>.tmp-<pid>" which commit() fsyncs and renames onto path; an uncommitted writer
// deletes its temporary file, so a killed or failed run leaves nothing half-written at path.
class SafetensorsWriter {
 public:
  explicit SafetensorsWriter(std::string path);
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  void set_metadata(std::map<std::string, std::string> metadata);
  void declare(const std::string& name, DType dtype, const Shape& shape);
  // Finishes the declarations: lays out offsets (in declaration order) and writes the header.
  void begin();
  // Writes one declared tensor; nbytes must equal its declared size. Thread-safe (pwrite).
  void write(const std::string& name, const void* data, size_t nbytes);
  void commit();  // every declared tensor must have been written
  const std::string& path() const { return path_; }

 private:
  struct Entry {
    DType dtype;
    Shape shape;
    uint64_t begin = 0, end = 0;
    bool written = false;
  };
  std::string path_, tmp_path_;
  int fd_ = -1;
  bool begun_ = false, committed_ = false;
  uint64_t data_start_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<std::string> order_;
  std::map<std::string, Entry> entries_;
  std::mutex mu_;  // guards Entry::written against concurrent write() calls
};

}  // namespace lords::io
