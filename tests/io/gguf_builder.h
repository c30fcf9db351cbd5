// Builds small GGUF files in memory for the io tests (layout: ggml docs/gguf.md). Values are encoded by
// hand so the tests can also write what a correct writer never would: lying lengths, bad type ids,
// n_dims > 4, offsets outside the file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/io_test_util.h"

namespace lords::test {

// GGUF metadata value type ids.
enum GgufValue : uint32_t {
  kGU8 = 0, kGI8 = 1, kGU16 = 2, kGI16 = 3, kGU32 = 4, kGI32 = 5, kGF32 = 6, kGBool = 7, kGString = 8,
  kGArray = 9, kGU64 = 10, kGI64 = 11, kGF64 = 12,
};

// ggml type ids used by the tests.
enum GgmlId : uint32_t { kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ8_0 = 8, kQ4_K = 12, kQ5_K = 13,
                         kQ6_K = 14, kBF16 = 30 };

inline std::string gguf_string(const std::string& s) { return le_bytes<uint64_t>(s.size()) + s; }

// An array value's payload: element type, count, then the encoded elements (each an array payload
// again for nested arrays).
inline std::string gguf_array(uint32_t elem_type, const std::vector<std::string>& encoded_elems) {
  std::string s = le_bytes(elem_type) + le_bytes<uint64_t>(encoded_elems.size());
  for (const std::string& e : encoded_elems) s += e;
  return s;
}

class GgufBuilder {
 public:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;  // innermost first
    uint32_t type;
    std::string data;
    std::optional<uint64_t> offset;  // default: laid out in order, aligned
  };

  uint32_t version = 3;
  uint64_t alignment = 32;  // padding used by build(); add general.alignment yourself when it differs

  // A key with an already-encoded value.
  GgufBuilder& kv(const std::string& key, uint32_t type, const std::string& value) {
    kvs_ += gguf_string(key) + le_bytes(type) + value;
    ++n_kv_;
    return *this;
  }
  GgufBuilder& kv_str(const std::string& key, const std::string& v) { return kv(key, kGString, gguf_string(v)); }
  GgufBuilder& kv_u32(const std::string& key, uint32_t v) { return kv(key, kGU32, le_bytes(v)); }
  GgufBuilder& kv_f32(const std::string& key, float v) { return kv(key, kGF32, le_bytes(v)); }
  GgufBuilder& tensor(Tensor t) {
    tensors_.push_back(std::move(t));
    return *this;
  }

  std::string build() const {
    std::string out = "GGUF" + le_bytes(version) + le_bytes<uint64_t>(tensors_.size()) + le_bytes(n_kv_) + kvs_;
    std::vector<uint64_t> offsets;
    uint64_t next = 0;
    for (const Tensor& t : tensors_) {
      offsets.push_back(next);
      next = align(next + t.data.size());
      out += gguf_string(t.name) + le_bytes<uint32_t>(static_cast<uint32_t>(t.ne.size()));
      for (uint64_t d : t.ne) out += le_bytes(d);
      out += le_bytes(t.type) + le_bytes<uint64_t>(t.offset.value_or(offsets.back()));
    }
    out.resize(align(out.size()), '\0');
    const size_t data_start = out.size();
    for (size_t i = 0; i < tensors_.size(); ++i) {
      out.resize(data_start + offsets[i], '\0');
      out += tensors_[i].data;
    }
    return out;
  }

 private:
  uint64_t align(uint64_t n) const { return (n + alignment - 1) / alignment * alignment; }
  std::string kvs_;
  uint64_t n_kv_ = 0;
  std::vector<Tensor> tensors_;
};

// Raw little-endian bytes of a float vector (an F32 tensor's data).
inline std::string f32_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

}  // namespace lords::test
