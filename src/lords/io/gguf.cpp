// GGUF reader. Layout (ggml docs/gguf.md): "GGUF" magic, u32 version (2 or 3), u64 n_tensors, u64 n_kv;
// n_kv key/values (string key, u32 value type, value); n_tensors tensor infos (string name, u32 n_dims,
// u64 ne[n_dims] innermost first, u32 ggml type, u64 offset into the data section); then padding to
// general.alignment (default 32) and the data section. All integers are little-endian; strings are
// u64 length + bytes. Only the header is parsed here: tensor data stays in the mapping until load_f32.
// Every length read from the file is checked against the bytes that remain before it is used.
#include <charconv>
#include <cstring>
#include <memory>

#include "lords/core/error.h"
#include "lords/io/gguf.h"

namespace lords::io {
namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint64_t kDefaultAlignment = 32;
constexpr int kMaxDims = 4;          // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 16;   // nested arrays deeper than this are certainly not a model

enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8, Array = 9,
  U64 = 10, I64 = 11, F64 = 12,
};

// Byte size of a fixed-size value type; 0 for strings and arrays.
uint64_t fixed_size(uint32_t t) {
  switch (static_cast<ValueType>(t)) {
    case ValueType::U8: case ValueType::I8: case ValueType::Bool: return 1;
    case ValueType::U16: case ValueType::I16: return 2;
    case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
    case ValueType::U64: case ValueType::I64: case ValueType::F64: return 8;
    default: return 0;
  }
}

// Bounds-checked little-endian reads from the mapping; every failure names the file and what was read.
class Cursor {
 public:
  explicit Cursor(const MappedFile& f) : path_(f.path()), data_(f.data()), size_(f.size()) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }
  const std::string& path() const { return path_; }

  void need(uint64_t n, const char* what) const {
    LORDS_CHECK(n <= remaining(), ErrorKind::Format,
                "{}: truncated: {} needs {} bytes at offset {}, only {} remain", path_, what, n, pos_, remaining());
  }
  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const char* what) {
    const uint64_t len = read<uint64_t>(what);
    need(len, what);  // also caps a lying length by the file size before anything is allocated
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
    pos_ += len;
    return s;
  }

 private:
  std::string path_;
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

nlohmann::json read_value(Cursor* c, uint32_t type, const std::string& key, int depth);

// The double nearest the shortest decimal that round-trips the float: an f32 epsilon of 1e-5 shows up
// as 1e-05 in the synthesized config instead of 9.999999747378752e-06, and still rounds to the same float.
double shortest_double(float f) {
  const std::string s = fmt::format("{}", f);
  double d = f;  // fallback should the text not parse
  std::from_chars(s.data(), s.data() + s.size(), d);
  return d;
}

nlohmann::json read_array(Cursor* c, const std::string& key, int depth) {
  LORDS_CHECK(depth < kMaxArrayDepth, ErrorKind::Format, "{}: key {}: arrays nested deeper than {}", c->path(), key,
              kMaxArrayDepth);
  const uint32_t elem_type = c->read<uint32_t>("array element type");
  const uint64_t n = c->read<uint64_t>("array length");
  // Every element takes at least one byte (a string its 8-byte length, an array its 12-byte header),
  // so a length beyond the remaining bytes is a lie; checking it first bounds the loop and the memory.
  const uint64_t min_elem = elem_type == static_cast<uint32_t>(ValueType::String)  ? 8
                            : elem_type == static_cast<uint32_t>(ValueType::Array) ? 12
                                                                                   : fixed_size(elem_type);
  LORDS_CHECK(min_elem > 0, ErrorKind::Format, "{}: key {}: unknown array element type {}", c->path(), key,
              elem_type);
  LORDS_CHECK(n <= c->remaining() / min_elem, ErrorKind::Format,
              "{}: key {}: array of {} elements exceeds the remaining {} bytes", c->path(), key, n, c->remaining());
  nlohmann::json arr = nlohmann::json::array();
  arr.get_ref<nlohmann::json::array_t&>().reserve(static_cast<size_t>(n));
  for (uint64_t i = 0; i < n; ++i) arr.push_back(read_value(c, elem_type, key, depth + 1));
  return arr;
}

nlohmann::json read_value(Cursor* c, uint32_t type, const std::string& key, int depth) {
  switch (static_cast<ValueType>(type)) {
    case ValueType::U8: return c->read<uint8_t>("u8 value");
    case ValueType::I8: return c->read<int8_t>("i8 value");
    case ValueType::U16: return c->read<uint16_t>("u16 value");
    case ValueType::I16: return c->read<int16_t>("i16 value");
    case ValueType::U32: return c->read<uint32_t>("u32 value");
    case ValueType::I32: return c->read<int32_t>("i32 value");
    case ValueType::U64: return c->read<uint64_t>("u64 value");
    case ValueType::I64: return c->read<int64_t>("i64 value");
    case ValueType::F32: return shortest_double(c->read<float>("f32 value"));
    case ValueType::F64: return c->read<double>("f64 value");
    case ValueType::Bool: return c->read<uint8_t>("bool value") != 0;
    case ValueType::String: return c->read_string("string value");
    case ValueType::Array: return read_array(c, key, depth);
  }
  LORDS_FAIL(ErrorKind::Format, "{}: key {}: unknown value type {}", c->path(), key, type);
}

nlohmann::json read_metadata(Cursor* c, uint64_t n_kv) {
  nlohmann::json meta = nlohmann::json::object();
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c->read_string("metadata key");
    LORDS_CHECK(!meta.contains(key), ErrorKind::Format, "{}: duplicate metadata key {}", c->path(), key);
    const uint32_t type = c->read<uint32_t>("metadata value type");
    meta[key] = read_value(c, type, key, 0);
  }
  return meta;
}

uint64_t alignment_of(const nlohmann::json& meta, const std::string& path) {
  if (!meta.contains("general.alignment")) return kDefaultAlignment;
  const nlohmann::json& a = meta["general.alignment"];
  const uint64_t v = a.is_number_unsigned() ? a.get<uint64_t>() : 0;
  // ggml stores it as a u32; the upper bound also keeps the data-start rounding free of overflow.
  LORDS_CHECK(v > 0 && v <= (uint64_t{1} << 31) && (v & (v - 1)) == 0, ErrorKind::Format,
              "{}: general.alignment {} is not an unsigned power of two below 2^32", path, a.dump());
  return v;
}

struct RawTensor {
  std::string name;
  Shape shape;  // outermost first
  const GgmlTypeTraits* traits = nullptr;
  uint64_t offset = 0;  // relative to the data section
  uint64_t nbytes = 0;
};

// ne[0] (the row) must hold whole blocks; the byte count is rows x blocks-per-row x block bytes.
uint64_t tensor_nbytes(const std::string& path, const std::string& name, const std::vector<uint64_t>& ne,
                       const GgmlTypeTraits& t) {
  const uint64_t row = ne.empty() ? 1 : ne[0];
  LORDS_CHECK(row % static_cast<uint64_t>(t.block_elems) == 0, ErrorKind::Format,
              "{}: tensor {}: row size {} is not a multiple of the {} block size {}", path, name, row, t.name,
              t.block_elems);
  uint64_t bytes = row / static_cast<uint64_t>(t.block_elems) * static_cast<uint64_t>(t.block_bytes);
  for (size_t i = 1; i < ne.size(); ++i)
    LORDS_CHECK(!__builtin_mul_overflow(bytes, ne[i], &bytes), ErrorKind::Format,
                "{}: tensor {}: byte size overflows", path, name);
  return bytes;
}

RawTensor read_tensor_info(Cursor* c) {
  RawTensor t;
  t.name = c->read_string("tensor name");
  const std::string& path = c->path();
  const uint32_t n_dims = c->read<uint32_t>("tensor n_dims");
  LORDS_CHECK(n_dims <= kMaxDims, ErrorKind::Format, "{}: tensor {}: n_dims {} exceeds {}", path, t.name, n_dims,
              kMaxDims);
  std::vector<uint64_t> ne(n_dims);
  uint64_t numel = 1;
  for (uint64_t& d : ne) {
    d = c->read<uint64_t>("tensor dimension");
    LORDS_CHECK(d <= static_cast<uint64_t>(INT64_MAX) && !__builtin_mul_overflow(numel, d, &numel) &&
                    numel <= static_cast<uint64_t>(INT64_MAX),
                ErrorKind::Format, "{}: tensor {}: dimension {} makes the element count overflow", path, t.name, d);
  }
  const uint32_t type = c->read<uint32_t>("tensor type");
  t.traits = ggml_type_traits(type);
  LORDS_CHECK(t.traits != nullptr, ErrorKind::Unsupported,
              "{}: tensor {}: unsupported ggml type id {} (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, "
              "Q5_K, Q6_K)",
              path, t.name, type);
  t.offset = c->read<uint64_t>("tensor offset");
  t.nbytes = tensor_nbytes(path, t.name, ne, *t.traits);
  for (auto it = ne.rbegin(); it != ne.rend(); ++it) t.shape.push_back(static_cast<int64_t>(*it));
  return t;
}

}  // namespace

nlohmann::json read_gguf(const std::string& path, TensorIndex* index) {
  auto file = std::make_shared<const MappedFile>(path);
  Cursor c(*file);
  const uint32_t magic = c.read<uint32_t>("magic");
  LORDS_CHECK(magic == kGgufMagic, ErrorKind::Format, "{}: bad magic (not a GGUF file)", path);
  const uint32_t version = c.read<uint32_t>("version");
  LORDS_CHECK(version == 2 || version == 3, ErrorKind::Unsupported,
              "{}: unsupported GGUF version {} (this reader supports 2 and 3)", path, version);
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  // A key/value takes at least 13 bytes and a tensor info at least 24: cap the counts by the file size.
  LORDS_CHECK(n_kv <= c.remaining() / 13 && n_tensors <= c.remaining() / 24, ErrorKind::Format,
              "{}: {} metadata entries and {} tensors cannot fit in {} bytes", path, n_kv, n_tensors, file->size());
  nlohmann::json meta = read_metadata(&c, n_kv);
  const uint64_t alignment = alignment_of(meta, path);

  std::vector<RawTensor> tensors;
  tensors.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) tensors.push_back(read_tensor_info(&c));

  // The data section starts at the next multiple of the alignment after the tensor infos.
  const uint64_t data_start = (c.pos() + alignment - 1) / alignment * alignment;
  for (const RawTensor& t : tensors) {
    LORDS_CHECK(t.offset % alignment == 0, ErrorKind::Format, "{}: tensor {}: offset {} is not a multiple of {}",
                path, t.name, t.offset, alignment);
    const uint64_t size = file->size();
    const bool inside =
        data_start <= size && t.offset <= size - data_start && t.nbytes <= size - data_start - t.offset;
    LORDS_CHECK(inside, ErrorKind::Format, "{}: tensor {}: data [offset {}, {} bytes] lies outside the file (size {})",
                path, t.name, data_start + t.offset, t.nbytes, size);
  }
  for (RawTensor& t : tensors) {  // only a fully valid file reaches the index
    index->add(TensorInfo{.name = std::move(t.name),
                          .dtype = std::string(t.traits->name),
                          .shape = std::move(t.shape),
                          .file = file,
                          .offset = data_start + t.offset,
                          .nbytes = t.nbytes});
  }
  return meta;
}

}  // namespace lords::io
