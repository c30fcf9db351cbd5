// safetensors reader and writer. Format (huggingface/safetensors README): u64 little-endian header
// length N, N bytes of JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
// {string: string}}, then the data block; offsets are relative to the start of the data block.
// The reader trusts nothing in the header: every offset, shape and dtype is checked against the file
// before a TensorInfo is handed out. The writer lays tensors out in declaration order and pads the
// header with spaces to a multiple of 8 bytes, so the data block starts 8-byte aligned.
#include "lords/io/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "lords/core/error.h"

namespace lords::io {
namespace {

constexpr uint64_t kLenBytes = 8;  // the u64 header length prefix

struct ParsedEntry {
  std::string name;
  std::string dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;  // relative to the data block
};

nlohmann::json parse_header(const MappedFile& f, uint64_t* header_len) {
  const std::string& path = f.path();
  LORDS_CHECK(f.size() >= kLenBytes, ErrorKind::Format,
              "{}: file is {} bytes, too short for the 8-byte header length", path, f.size());
  uint64_t n;
  std::memcpy(&n, f.data(), kLenBytes);
  LORDS_CHECK(n <= f.size() - kLenBytes, ErrorKind::Format, "{}: header length {} exceeds file size {}", path, n,
              f.size());
  const char* begin = reinterpret_cast<const char*>(f.data()) + kLenBytes;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(begin, begin + n);
  } catch (const nlohmann::json::parse_error& e) {
    LORDS_FAIL(ErrorKind::Format, "{}: header is not valid JSON: {}", path, e.what());
  }
  LORDS_CHECK(header.is_object(), ErrorKind::Format, "{}: header is not a JSON object", path);
  *header_len = n;
  return header;
}

std::map<std::string, std::string> parse_metadata(const nlohmann::json& header, const std::string& path) {
  std::map<std::string, std::string> meta;
  if (!header.contains("__metadata__")) return meta;
  const nlohmann::json& m = header["__metadata__"];
  LORDS_CHECK(m.is_object(), ErrorKind::Format, "{}: __metadata__ is not a JSON object", path);
  for (const auto& [key, value] : m.items()) {
    LORDS_CHECK(value.is_string(), ErrorKind::Format, "{}: __metadata__ value of '{}' is not a string", path, key);
    meta[key] = value.get<std::string>();
  }
  return meta;
}

// Byte count of shape x dtype; false on overflow (a lying shape must not wrap into a small number).
bool shape_bytes(const Shape& shape, size_t elem, uint64_t* out) {
  uint64_t n = elem;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
  *out = n;
  return n <= static_cast<uint64_t>(INT64_MAX);
}

ParsedEntry parse_entry(const std::string& name, const nlohmann::json& j, uint64_t data_size, const std::string& path) {
  LORDS_CHECK(j.is_object() && j.contains("dtype") && j.contains("shape") && j.contains("data_offsets"),
              ErrorKind::Format, "{}: tensor {}: entry needs dtype, shape and data_offsets", path, name);
  ParsedEntry e;
  e.name = name;
  LORDS_CHECK(j["dtype"].is_string(), ErrorKind::Format, "{}: tensor {}: dtype is not a string", path, name);
  e.dtype = j["dtype"].get<std::string>();
  DType dtype;
  LORDS_CHECK(dtype_from_name(e.dtype, &dtype), ErrorKind::Format, "{}: tensor {}: unknown dtype '{}'", path, name,
              e.dtype);
  const nlohmann::json& shape = j["shape"];
  LORDS_CHECK(shape.is_array(), ErrorKind::Format, "{}: tensor {}: shape is not an array", path, name);
  for (const auto& d : shape) {
    LORDS_CHECK(d.is_number_unsigned() && d.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX), ErrorKind::Format,
                "{}: tensor {}: shape {} has an entry that is not a non-negative integer", path, name, shape.dump());
    e.shape.push_back(d.get<int64_t>());
  }
  const nlohmann::json& off = j["data_offsets"];
  LORDS_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
              ErrorKind::Format, "{}: tensor {}: data_offsets {} is not a pair of non-negative integers", path, name,
              off.dump());
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  LORDS_CHECK(e.begin <= e.end, ErrorKind::Format, "{}: tensor {}: data_offsets [{}, {}] are out of order", path,
              name, e.begin, e.end);
  LORDS_CHECK(e.end <= data_size, ErrorKind::Format,
              "{}: tensor {}: data_offsets [{}, {}] lie outside the data block ({} bytes)", path, name, e.begin,
              e.end, data_size);
  uint64_t need = 0;
  LORDS_CHECK(shape_bytes(e.shape, dtype_size(dtype), &need), ErrorKind::Format,
              "{}: tensor {}: shape {} x {} overflows", path, name, shape_str(e.shape), e.dtype);
  LORDS_CHECK(need == e.end - e.begin, ErrorKind::Format,
              "{}: tensor {}: shape {} x {} needs {} bytes, data_offsets give {}", path, name, shape_str(e.shape),
              e.dtype, need, e.end - e.begin);
  return e;
}

// Two tensors sharing bytes would alias silently (a write through one changes the other): reject.
void check_overlaps(const std::vector<ParsedEntry>& entries, const std::string& path) {
  std::vector<const ParsedEntry*> sorted;
  for (const ParsedEntry& e : entries)
    if (e.end > e.begin) sorted.push_back(&e);  // an empty tensor occupies no bytes
  std::sort(sorted.begin(), sorted.end(),
            [](const ParsedEntry* a, const ParsedEntry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    const ParsedEntry& a = *sorted[i - 1];
    const ParsedEntry& b = *sorted[i];
    LORDS_CHECK(b.begin >= a.end, ErrorKind::Format, "{}: tensors {} [{}, {}] and {} [{}, {}] overlap", path,
                a.name, a.begin, a.end, b.name, b.begin, b.end);
  }
}

void pwrite_all(int fd, const void* data, size_t n, uint64_t offset, const std::string& path) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    LORDS_CHECK(w > 0, ErrorKind::Io, "{}: write failed: {}", path, w < 0 ? std::strerror(errno) : "no progress");
    p += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
}

// Makes the rename itself durable; best effort, as some file systems refuse fsync on directories.
void fsync_parent_dir(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

std::map<std::string, std::string> read_safetensors(const std::string& path, TensorIndex* index) {
  auto file = std::make_shared<const MappedFile>(path);
  uint64_t header_len = 0;
  const nlohmann::json header = parse_header(*file, &header_len);
  const uint64_t data_start = kLenBytes + header_len;
  const uint64_t data_size = file->size() - data_start;
  std::map<std::string, std::string> meta = parse_metadata(header, path);
  std::vector<ParsedEntry> entries;
  for (const auto& [name, value] : header.items())
    if (name != "__metadata__") entries.push_back(parse_entry(name, value, data_size, path));
  check_overlaps(entries, path);
  for (ParsedEntry& e : entries) {
    index->add(TensorInfo{.name = std::move(e.name),
                          .dtype = std::move(e.dtype),
                          .shape = std::move(e.shape),
                          .file = file,
                          .offset = data_start + e.begin,
                          .nbytes = e.end - e.begin});
  }
  return meta;
}

SafetensorsWriter::SafetensorsWriter(std::string path)
    : path_(std::move(path)), tmp_path_(path_ + ".tmp-" + std::to_string(::getpid())) {
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  LORDS_CHECK(fd_ >= 0, ErrorKind::Io, "{}: cannot create: {}", tmp_path_, std::strerror(errno));
}

SafetensorsWriter::~SafetensorsWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_path_.c_str());
}

void SafetensorsWriter::set_metadata(std::map<std::string, std::string> metadata) {
  LORDS_CHECK(!begun_, ErrorKind::Usage, "{}: set_metadata after begin()", path_);
  metadata_ = std::move(metadata);
}

void SafetensorsWriter::declare(const std::string& name, DType dtype, const Shape& shape) {
  LORDS_CHECK(!begun_, ErrorKind::Usage, "{}: declare({}) after begin()", path_, name);
  LORDS_CHECK(name != "__metadata__" && !name.empty(), ErrorKind::Usage, "{}: invalid tensor name '{}'", path_, name);
  LORDS_CHECK(!entries_.count(name), ErrorKind::Usage, "{}: tensor {} declared twice", path_, name);
  for (int64_t d : shape)
    LORDS_CHECK(d >= 0, ErrorKind::BadShape, "{}: tensor {}: negative dimension in {}", path_, name, shape_str(shape));
  uint64_t nbytes = 0;
  LORDS_CHECK(shape_bytes(shape, dtype_size(dtype), &nbytes), ErrorKind::BadShape, "{}: tensor {}: shape {} overflows",
              path_, name, shape_str(shape));
  entries_[name] = Entry{.dtype = dtype, .shape = shape, .begin = 0, .end = nbytes};
  order_.push_back(name);
}

void SafetensorsWriter::begin() {
  LORDS_CHECK(!begun_, ErrorKind::Usage, "{}: begin() called twice", path_);
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const std::string& name : order_) {
    Entry& e = entries_.at(name);
    const uint64_t nbytes = e.end;  // declare() stored the size in end
    e.begin = offset;
    e.end = offset + nbytes;
    offset = e.end;
    header[name] = {{"dtype", dtype_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {e.begin, e.end}}};
  }
  std::string text = header.dump();
  text.append((kLenBytes - text.size() % kLenBytes) % kLenBytes, ' ');
  const uint64_t len = text.size();
  pwrite_all(fd_, &len, kLenBytes, 0, tmp_path_);
  pwrite_all(fd_, text.data(), text.size(), kLenBytes, tmp_path_);
  data_start_ = kLenBytes + len;
  begun_ = true;
}

void SafetensorsWriter::write(const std::string& name, const void* data, size_t nbytes) {
  LORDS_CHECK(begun_, ErrorKind::Usage, "{}: write({}) before begin()", path_, name);
  auto it = entries_.find(name);
  LORDS_CHECK(it != entries_.end(), ErrorKind::Usage, "{}: tensor {} was not declared", path_, name);
  Entry& e = it->second;
  LORDS_CHECK(nbytes == e.end - e.begin, ErrorKind::Usage, "{}: tensor {}: got {} bytes, declared {} x {} is {} bytes",
              path_, name, nbytes, shape_str(e.shape), dtype_name(e.dtype), e.end - e.begin);
  {
    std::lock_guard<std::mutex> lock(mu_);
    LORDS_CHECK(!e.written, ErrorKind::Usage, "{}: tensor {} written twice", path_, name);
    e.written = true;
  }
  pwrite_all(fd_, data, nbytes, data_start_ + e.begin, tmp_path_);
}

void SafetensorsWriter::commit() {
  LORDS_CHECK(begun_ && !committed_, ErrorKind::Usage, "{}: commit() without begin() or twice", path_);
  for (const std::string& name : order_)
    LORDS_CHECK(entries_.at(name).written, ErrorKind::Usage, "{}: tensor {} was declared but never written", path_,
                name);
  LORDS_CHECK(::fsync(fd_) == 0, ErrorKind::Io, "{}: fsync failed: {}", tmp_path_, std::strerror(errno));
  const int rc = ::close(fd_);
  fd_ = -1;
  LORDS_CHECK(rc == 0, ErrorKind::Io, "{}: close failed: {}", tmp_path_, std::strerror(errno));
  LORDS_CHECK(::rename(tmp_path_.c_str(), path_.c_str()) == 0, ErrorKind::Io, "{}: cannot rename {} onto it: {}",
              path_, tmp_path_, std::strerror(errno));
  committed_ = true;
  fsync_parent_dir(path_);
}

double metadata_number(const std::map<std::string, std::string>& meta, const std::string& key,
                       const std::string& alt_key, const std::string& path) {
  auto it = meta.find(key);
  if (it == meta.end()) it = meta.find(alt_key);
  LORDS_CHECK(it != meta.end(), ErrorKind::Format, "{}: metadata '{}' ('{}') missing", path, key, alt_key);
  try {
    size_t used = 0;
    const double v = std::stod(it->second, &used);
    if (used == it->second.size()) return v;
  } catch (const std::exception&) {
  }
  LORDS_FAIL(ErrorKind::Format, "{}: metadata '{}' is not a number: '{}'", path, it->first, it->second);
}

}  // namespace lords::io
