// GGUF v3 reader (llama.cpp's model format): header, metadata key/values, tensor infos, aligned data.
// Supported tensor types, dequantized to fp32 on load: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "lords/io/tensor_index.h"

namespace lords::io {

// ggml type ids as they appear in GGUF tensor infos.
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
};

struct GgmlTypeTraits {
  std::string_view name;  // "Q4_K"
  int64_t block_elems;    // elements per block (1 for plain types)
  int64_t block_bytes;    // bytes per block
};

// Returns nullptr for a type id this reader does not support.
const GgmlTypeTraits* ggml_type_traits(uint32_t type);
const GgmlTypeTraits* ggml_type_traits(std::string_view name);

// Adds every tensor of the GGUF file to index (TensorInfo::dtype = type name, shape = reversed ne[]).
// Returns the metadata: key -> JSON value (arrays as JSON arrays, strings as strings).
nlohmann::json read_gguf(const std::string& path, TensorIndex* index);

// Dequantizes n elements (a multiple of the type's block size) of a GGUF block type into out.
void gguf_dequantize(std::string_view type_name, const uint8_t* src, int64_t n, float* out);

}  // namespace lords::io
