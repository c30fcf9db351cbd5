// TensorIndex: name -> (file, offset, dtype, shape) for every tensor of a model, and the conversion of
// one stored tensor to fp32. Storage types are spelled as in the file; F32/F16/BF16 are shared by
// safetensors and GGUF, the GGUF block types (Q8_0, Q4_K, ...) are dequantized by gguf_dequantize.
#include "lords/io/tensor_index.h"

#include <cmath>

#include "lords/core/error.h"
#include "lords/io/gguf.h"

namespace lords::io {
namespace {

std::string file_of(const TensorInfo& info) { return info.file ? info.file->path() : std::string("<no file>"); }

// The first non-finite value, or -1. NaN/Inf weights poison every later result, so they stop the load.
int64_t first_non_finite(const std::vector<float>& v) {
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i])) return static_cast<int64_t>(i);
  return -1;
}

}  // namespace

void TensorIndex::add(TensorInfo info) {
  auto it = tensors_.find(info.name);
  LORDS_CHECK(it == tensors_.end(), ErrorKind::Format, "{}: tensor {} is also in {}", file_of(info), info.name,
              it == tensors_.end() ? std::string() : file_of(it->second));
  std::string name = info.name;
  tensors_.emplace(std::move(name), std::move(info));
}

const TensorInfo& TensorIndex::at(const std::string& name) const {
  auto it = tensors_.find(name);
  LORDS_CHECK(it != tensors_.end(), ErrorKind::Format, "[index] tensor {} not found in the model", name);
  return it->second;
}

std::vector<std::string> TensorIndex::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, info] : tensors_) out.push_back(name);
  return out;
}

HostTensor TensorIndex::load_f32(const std::string& name) const {
  const TensorInfo& info = at(name);
  HostTensor t(info.shape);
  convert_to_f32(info, t.data.data());
  const int64_t bad = first_non_finite(t.data);
  LORDS_CHECK(bad < 0, ErrorKind::Format, "{}: tensor {}: element {} is {} (the weights are corrupt)", file_of(info),
              name, bad, bad < 0 ? 0.0f : t.data[static_cast<size_t>(bad)]);
  return t;
}

const uint8_t* TensorIndex::raw(const std::string& name) const {
  const TensorInfo& info = at(name);
  LORDS_ASSERT(info.file != nullptr);
  return info.file->data() + info.offset;
}

void convert_to_f32(const TensorInfo& info, float* out) {
  const std::string path = file_of(info);
  const GgmlTypeTraits* traits = ggml_type_traits(info.dtype);
  LORDS_CHECK(traits != nullptr, ErrorKind::Unsupported, "{}: tensor {}: cannot convert dtype {} to fp32", path,
              info.name, info.dtype);
  const int64_t numel = shape_numel(info.shape);
  const int64_t row = info.shape.empty() ? 1 : info.shape.back();
  LORDS_CHECK(row % traits->block_elems == 0, ErrorKind::Format,
              "{}: tensor {}: row size {} is not a multiple of the {} block size {}", path, info.name, row,
              traits->name, traits->block_elems);
  // The readers checked these already; a hand-built TensorInfo must not read past the mapping either.
  const uint64_t need = static_cast<uint64_t>(numel / traits->block_elems * traits->block_bytes);
  LORDS_CHECK(info.file != nullptr && info.nbytes == need && info.offset <= info.file->size() &&
                  need <= info.file->size() - info.offset,
              ErrorKind::Format, "{}: tensor {}: {} x {} needs {} bytes at offset {}, the entry gives {}", path,
              info.name, shape_str(info.shape), info.dtype, need, info.offset, info.nbytes);
  gguf_dequantize(info.dtype, info.file->data() + info.offset, numel, out);
}

}  // namespace lords::io
