// PCRE2 wrapper for the pre-tokenizer splits: a pattern compiled once (UTF + UCP, so \s \p{L} \p{N}
// are Unicode-aware as in the Oniguruma engine HF tokenizers uses; JIT-compiled when available) and
// the "Isolated" split of HF's SplitDelimiterBehavior: every match and every gap between matches is
// a piece.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct pcre2_real_code_8;
struct pcre2_real_match_data_8;

namespace lords::tok {

enum class PatternKind { Regex, Literal };

// Per-call match scratch (PCRE2 match data is not safe to share between threads).
class MatchData {
 public:
  MatchData();
  ~MatchData();
  MatchData(const MatchData&) = delete;
  MatchData& operator=(const MatchData&) = delete;
  pcre2_real_match_data_8* get() const { return md_; }

 private:
  pcre2_real_match_data_8* md_;
};

class Regex {
 public:
  // where names the file and field for the error message when the pattern does not compile.
  Regex(std::string_view pattern, PatternKind kind, const std::string& where);
  ~Regex();
  Regex(Regex&& other) noexcept;
  Regex& operator=(Regex&& other) noexcept;
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  const std::string& pattern() const { return pattern_; }

  // Appends to out the matches of the pattern in subject and the non-empty gaps between them, in
  // order. subject must be valid UTF-8; lookarounds see only subject (HF applies the regex to each
  // piece alone).
  void split_isolated(std::string_view subject,
                      const MatchData& md,
                      std::vector<std::string_view>* out) const;

 private:
  std::string pattern_;
  pcre2_real_code_8* code_ = nullptr;
};

}  // namespace lords::tok
