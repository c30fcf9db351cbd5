#include "lords/tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <utility>

#include "lords/core/error.h"

namespace lords::tok {

MatchData::MatchData() : md_(pcre2_match_data_create(1, nullptr)) {
  LORDS_ASSERT(md_ != nullptr);
}

MatchData::~MatchData() {
  pcre2_match_data_free(md_);
}

Regex::Regex(std::string_view pattern, PatternKind kind, const std::string& where)
    : pattern_(pattern) {
  // PCRE2_LITERAL rejects PCRE2_UCP, which only matters for character classes anyway.
  const uint32_t options =
      kind == PatternKind::Literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP;
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()),
                        pattern.size(),
                        options,
                        &err,
                        &err_offset,
                        nullptr);
  if (code_ == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    LORDS_FAIL(ErrorKind::Format,
               "[tokenizer] {}: regex '{}' does not compile at offset {}: {}",
               where,
               pattern,
               err_offset,
               reinterpret_cast<const char*>(msg));
  }
  // JIT is an optimization only: where it is unavailable pcre2_match interprets the pattern.
  pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);
}

Regex::~Regex() {
  pcre2_code_free(code_);
}

Regex::Regex(Regex&& other) noexcept
    : pattern_(std::move(other.pattern_)), code_(std::exchange(other.code_, nullptr)) {}

Regex& Regex::operator=(Regex&& other) noexcept {
  std::swap(pattern_, other.pattern_);
  std::swap(code_, other.code_);
  return *this;
}

void Regex::split_isolated(std::string_view subject,
                           const MatchData& md,
                           std::vector<std::string_view>* out) const {
  const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
  const size_t n = subject.size();
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
  size_t pos = 0;   // where the next search starts
  size_t prev = 0;  // end of the last piece emitted
  while (pos < n) {
    // The text was validated once in encode; skip PCRE2's per-call UTF check.
    int rc = pcre2_match(code_, s, n, pos, PCRE2_NO_UTF_CHECK, md.get(), nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      rc = pcre2_match(code_, s, n, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md.get(), nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    LORDS_CHECK(rc >= 0,
                ErrorKind::Internal,
                "[tokenizer] regex '{}': pcre2_match failed ({})",
                pattern_,
                rc);
    const size_t start = ov[0], end = ov[1];
    if (end == start) {
      // An empty match splits nothing; step over one code point (what find_iter does).
      pos = start + 1;
      while (pos < n && (subject[pos] & 0xc0) == 0x80) ++pos;
      continue;
    }
    if (start > prev) out->push_back(subject.substr(prev, start - prev));
    out->push_back(subject.substr(start, end - start));
    prev = pos = end;
  }
  if (prev < n) out->push_back(subject.substr(prev));
}

}  // namespace lords::tok
