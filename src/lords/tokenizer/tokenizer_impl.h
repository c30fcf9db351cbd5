// Internal state of lords::Tokenizer, shared by the two loaders (hf_json.cpp, gguf_vocab.cpp) and
// tokenizer.cpp. Not part of the public interface.
#pragma once

#include <array>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lords/tokenizer/bpe.h"
#include "lords/tokenizer/pre_tokenizer.h"
#include "lords/tokenizer/tokenizer.h"

namespace lords::tok {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool lstrip = false;  // the match swallows whitespace on its left
  bool rstrip = false;  // ... and on its right
};

// One segment of the text after added-token matching: either plain text or one added token.
struct Segment {
  std::string_view text;
  int32_t id = -1;  // >= 0: an added token
};

// Leftmost-longest matching of a set of literal strings (what HF's aho-corasick with
// LeftmostLongest finds).
class AddedMatcher {
 public:
  void add(AddedToken t);
  bool empty() const { return tokens_.empty(); }
  // Splits text into segments; plain-text segments are non-empty.
  void split(std::string_view text, std::vector<Segment>* out) const;

 private:
  std::vector<AddedToken> tokens_;
  std::array<std::vector<int32_t>, 256> by_first_byte_;  // indices into tokens_, longest first
};

// Parses a JSON file; Error{Io} when it cannot be read, Error{Format} when it is not JSON.
nlohmann::json read_json_file(const std::string& path);

}  // namespace lords::tok

namespace lords {

struct Tokenizer::Impl {
  std::string source;
  tok::BpeModel bpe;
  tok::PreTokenizer pre;
  // HF matches added tokens in two passes: those with normalized=false on the raw text, then the
  // normalized ones in what is left. GGUF has no such flag: all are in the first set.
  tok::AddedMatcher added_raw, added_normalized;
  std::vector<std::string> text;        // (V) id -> vocab string ("" for an id no entry uses)
  std::vector<std::string> piece;       // (V) id -> decoded bytes
  std::vector<uint8_t> special;         // (V) 1 for control tokens
  std::vector<int32_t> prefix, suffix;  // ids around the text with AddSpecial::Yes
  std::optional<int32_t> bos, eos;

  // Fills piece[] from text[] (the ByteLevel decoder per token) and checks bos/eos are in range.
  void finish();
};

}  // namespace lords
