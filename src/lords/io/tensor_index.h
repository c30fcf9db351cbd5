// One index over every tensor of a model, whatever file format holds it (safetensors or GGUF).
// Tensors are read lazily from mmapped files; load_f32 converts/dequantizes one tensor on demand.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lords/core/tensor.h"
#include "lords/io/mmap_file.h"

namespace lords::io {

struct TensorInfo {
  std::string name;   // name as stored in the file
  std::string dtype;  // storage type as the file spells it: "F32", "BF16", "U8", "Q4_1", "Q6_K", ...
  Shape shape;        // row-major, outermost first (GGUF's ne[] is reversed into this order)
  std::shared_ptr<const MappedFile> file;
  uint64_t offset = 0;  // absolute byte offset of the data in file
  uint64_t nbytes = 0;  // byte count of the data, already checked against dtype x shape
};

class TensorIndex {
 public:
  // Adds a tensor; throws Error{Format} on a duplicate name (naming both files).
  void add(TensorInfo info);
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  const TensorInfo& at(const std::string& name) const;  // throws Error{Format} naming the tensor
  const std::map<std::string, TensorInfo>& all() const { return tensors_; }
  std::vector<std::string> names() const;

  // Loads one tensor as fp32 (F32/F16/BF16 converted; GGUF block types dequantized).
  // Throws Error{Format} on NaN/Inf values, naming the tensor and file.
  HostTensor load_f32(const std::string& name) const;
  // The raw stored bytes (no conversion).
  const uint8_t* raw(const std::string& name) const;

 private:
  std::map<std::string, TensorInfo> tensors_;
};

// Converts raw bytes of `info` to fp32 into out (info.shape elements). Used by load_f32.
void convert_to_f32(const TensorInfo& info, float* out);

}  // namespace lords::io
