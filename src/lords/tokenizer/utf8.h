// UTF-8 helpers for the tokenizer: strict validation (RFC 3629: no overlongs, no surrogates,
// nothing past U+10FFFF), encoding one code point, and Unicode White_Space (Rust's
// char::is_whitespace, which the HF added-token lstrip/rstrip options use).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lords::tok {

inline constexpr size_t kValidUtf8 = std::string_view::npos;

// Returns the byte offset of the first byte that does not start a well-formed sequence, or
// kValidUtf8.
size_t find_invalid_utf8(std::string_view s);

void append_utf8(uint32_t cp, std::string* out);

// Decodes the code point at s[pos] (s must be valid UTF-8); sets *len to its byte length.
uint32_t decode_utf8(std::string_view s, size_t pos, size_t* len);

// Byte offset where the code point that ends at s[end - 1] starts (end > 0, s valid UTF-8).
size_t prev_utf8_start(std::string_view s, size_t end);

bool is_unicode_whitespace(uint32_t cp);

}  // namespace lords::tok
