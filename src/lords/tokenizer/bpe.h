// Byte-level BPE model (GPT-2): each byte of a piece becomes one symbol via GPT-2's
// bytes_to_unicode table (printable Latin-1 bytes map to themselves, the other 68 to
// U+0100..U+0143), then adjacent symbol pairs are merged lowest merge rank first, leftmost first
// among equal ranks. The merge loop is HF tokenizers' Word::merge_all (models/bpe/word.rs),
// priority queue included, so ids match it exactly. Results of repeated pieces are cached.
// Reference: openai/gpt-2 encoder.py (bytes_to_unicode, bpe).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace lords::tok {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// The code point GPT-2 uses to spell byte b inside vocab strings ("Ġ" = U+0120 for ' ').
uint32_t byte_to_unicode(uint8_t b);

// The bytes a vocab string stands for: every char mapped back through bytes_to_unicode; a string
// with a char outside the table (an added token such as "<|im_start|> " with a real space) is kept
// as its raw UTF-8, which is what HF's ByteLevel decoder does per token.
std::string byte_level_decode(std::string_view token_text);

struct BpeOptions {
  std::optional<int32_t>
      unk_id;  // stands in for a byte missing from the vocab; none: the byte is dropped
  bool ignore_merges = false;  // a piece that is itself a vocab entry is emitted whole (Llama-3)
};

class BpeModel {
 public:
  BpeModel() = default;
  // vocab: text -> id; merges: pairs in rank order. Throws Error{Format} for a merge of unknown
  // tokens.
  BpeModel(StringIdMap vocab,
           const std::vector<std::pair<std::string, std::string>>& merges,
           BpeOptions options,
           const std::string& source);

  // Appends the ids of one pre-tokenized piece (raw bytes, before the byte-level mapping).
  void encode_piece(std::string_view piece, std::vector<int32_t>* out) const;

  std::optional<int32_t> find(std::string_view token_text) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  struct Cache;

  void merge_all(std::string_view piece, std::vector<int32_t>* out) const;
  const Merge* find_merge(int32_t a, int32_t b) const;

  StringIdMap vocab_;
  std::unordered_map<uint64_t, Merge> merges_;  // key: (left id << 32) | right id
  std::array<int32_t, 256> byte_id_{};          // id of each single-byte symbol, -1 when absent
  BpeOptions options_;
  std::shared_ptr<Cache> cache_;  // piece -> ids; internally locked, so encode is thread-safe
};

}  // namespace lords::tok
