#include "lords/runtime/text_source.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "lords/core/error.h"
#include "lords/io/gguf.h"
#include "lords/io/tensor_index.h"

namespace lords::runtime {
namespace {

// Offset of the first byte that does not start a valid UTF-8 sequence (overlongs, surrogates and
// code points beyond U+10FFFF are invalid), or npos.
size_t first_invalid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + static_cast<size_t>(len) > s.size()) return i;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1fu) : len == 3 ? (c & 0x0fu) : (c & 0x07u);
    for (int k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      if ((cc >> 6) != 0x2) return i;
      cp = (cp << 6) | (cc & 0x3fu);
    }
    const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += static_cast<size_t>(len);
  }
  return std::string::npos;
}

}  // namespace

Tokenizer load_model_tokenizer(const std::string& model_path) {
  namespace fs = std::filesystem;
  if (fs::is_regular_file(model_path)) {
    io::TensorIndex index;
    const nlohmann::json meta = io::read_gguf(model_path, &index);
    return Tokenizer::from_gguf_metadata(meta, model_path);
  }
  return Tokenizer::load(model_path);
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LORDS_CHECK(in.good(), ErrorKind::Io, "{}: cannot open text file", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  LORDS_CHECK(!text.empty(), ErrorKind::Format, "{}: text file is empty", path);
  const size_t bad = first_invalid_utf8(text);
  LORDS_CHECK(bad == std::string::npos, ErrorKind::Format, "{}: text is not valid UTF-8 at byte {}", path, bad);
  return text;
}

}  // namespace lords::runtime
