#include "lords/core/dtype.h"

#include <array>
#include <utility>

#include "lords/core/error.h"

namespace lords {
namespace {

struct DTypeRow {
  DType type;
  std::string_view name;
  size_t size;
};

constexpr std::array<DTypeRow, 13> kDTypes = {{
    {DType::F32, "F32", 4},
    {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},
    {DType::F64, "F64", 8},
    {DType::I8, "I8", 1},
    {DType::U8, "U8", 1},
    {DType::I16, "I16", 2},
    {DType::I32, "I32", 4},
    {DType::I64, "I64", 8},
    {DType::U16, "U16", 2},
    {DType::U32, "U32", 4},
    {DType::U64, "U64", 8},
    {DType::Bool, "BOOL", 1},
}};

const DTypeRow& row(DType t) {
  for (const auto& r : kDTypes)
    if (r.type == t) return r;
  LORDS_ASSERT(false);
  return kDTypes[0];
}

}  // namespace

size_t dtype_size(DType t) { return row(t).size; }
std::string_view dtype_name(DType t) { return row(t).name; }

bool dtype_from_name(std::string_view name, DType* out) {
  for (const auto& r : kDTypes) {
    if (r.name == name) {
      *out = r.type;
      return true;
    }
  }
  return false;
}

float round_through(DType t, float v) {
  switch (t) {
    case DType::F32:
      return v;
    case DType::F16:
      return fp16_to_f32(f32_to_fp16(v));
    case DType::BF16:
      return bf16_to_f32(f32_to_bf16(v));
    default:
      LORDS_FAIL(ErrorKind::Unsupported, "[dtype] {} is not a floating storage type", dtype_name(t));
  }
}

}  // namespace lords
