// Pre-tokenization: splits a text segment (one without added tokens) into the pieces BPE runs on,
// as a chain of HF pre-tokenizer steps. Each step splits every current piece on its own
// (lookarounds never cross a piece):
//   Split(Regex, Isolated)  -> the regex                    (Llama-3, Qwen2)
//   Digits(individual)      -> \p{N} (contiguous: \p{N}+)   (SmolLM2: Rust char::is_numeric =
//   \p{N}) ByteLevel(use_regex)    -> optional prefix space, then the GPT-2 regex; the byte->char
//   mapping itself is
//                              done by the BPE model, so ByteLevel must be the last step.
// GGUF files name the chain with tokenizer.ggml.pre; pre_tokenizer_for_gguf maps it like llama.cpp
// does.
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lords/tokenizer/regex.h"

namespace lords::tok {

inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kDigitPattern = R"(\p{N})";
inline constexpr std::string_view kDigitsPattern = R"(\p{N}+)";

enum class PrefixSpace { No, Yes };

struct PreTokStep {
  PrefixSpace prefix_space =
      PrefixSpace::No;         // prepend ' ' to a piece that does not start with one
  std::optional<Regex> split;  // Isolated split; none: the piece passes whole
};

// Scratch owned by one encode call: match data and the pieces that got a prefix space.
struct PreTokScratch {
  MatchData md;
  std::deque<std::string> owned;  // deque: views into it stay valid as it grows
  std::vector<std::string_view> next;
};

class PreTokenizer {
 public:
  void add_step(PreTokStep step) { steps_.push_back(std::move(step)); }
  bool empty() const { return steps_.empty(); }

  // Replaces *pieces (views into text or into scratch) with the pieces of text.
  void run(std::string_view text,
           PreTokScratch* scratch,
           std::vector<std::string_view>* pieces) const;

 private:
  std::vector<PreTokStep> steps_;
};

// tokenizer.ggml.pre -> steps; throws Error{Unsupported} naming source and the value for an unknown
// one. Sets *ignore_merges for the pre-tokenizers whose HF model has ignore_merges (llama3), as
// llama.cpp does.
PreTokenizer pre_tokenizer_for_gguf(const std::string& pre,
                                    const std::string& source,
                                    bool* ignore_merges);

}  // namespace lords::tok
