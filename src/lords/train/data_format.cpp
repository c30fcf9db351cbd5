#include "lords/train/data_format.h"

#include <algorithm>

#include "lords/core/error.h"

namespace lords::train {
namespace {

constexpr const char* kImStart = "<|im_start|>";
constexpr const char* kImEnd = "<|im_end|>";

void append(TokenItem* item, const std::vector<int32_t>& ids, float weight) {
  item->ids.insert(item->ids.end(), ids.begin(), ids.end());
  item->weights.insert(item->weights.end(), ids.size(), weight);
}

}  // namespace

PromptFormat prompt_format_from_name(std::string_view name) {
  if (name == "chatml") return PromptFormat::ChatMl;
  if (name == "plain") return PromptFormat::Plain;
  LORDS_FAIL(ErrorKind::Usage, "unknown prompt format '{}' (expected chatml or plain)", name);
}

std::string_view prompt_format_name(PromptFormat format) {
  return format == PromptFormat::ChatMl ? "chatml" : "plain";
}

PromptFormat default_prompt_format(const Tokenizer& tok) {
  return tok.token_id(kImStart) && tok.token_id(kImEnd) ? PromptFormat::ChatMl
                                                        : PromptFormat::Plain;
}

TokenItem format_example(const Tokenizer& tok,
                         const Example& ex,
                         const FormatOptions& options,
                         const std::string& source) {
  LORDS_CHECK(
      options.format != PromptFormat::ChatMl || default_prompt_format(tok) == PromptFormat::ChatMl,
      ErrorKind::Usage,
      "prompt format chatml needs {} and {} in the vocab of {}",
      kImStart,
      kImEnd,
      tok.source());
  auto encode = [&](const std::string& text) {
    try {
      return tok.encode(text, AddSpecial::No);
    } catch (const Error& e) {
      LORDS_FAIL(ErrorKind::Format, "{}:{}: {}", source, ex.line, e.what());
    }
  };
  TokenItem item;
  if (tok.adds_bos() && tok.bos_id()) append(&item, {*tok.bos_id()}, 0.0f);
  if (options.format == PromptFormat::ChatMl) {
    const std::string start = kImStart, end = kImEnd;
    if (!options.system_prompt.empty())
      append(&item, encode(start + "system\n" + options.system_prompt + end + "\n"), 0.0f);
    append(&item, encode(start + "user\n" + ex.prompt + end + "\n" + start + "assistant\n"), 0.0f);
    append(&item, encode(ex.response + end), 1.0f);
    append(&item, encode("\n"), 0.0f);
  } else {
    append(&item, encode(ex.prompt + "\n"), 0.0f);
    append(&item, encode(ex.response), 1.0f);
    if (tok.eos_id()) append(&item, {*tok.eos_id()}, 1.0f);
  }
  return item;
}

std::vector<TokenItem> text_windows(const Tokenizer& tok, std::string_view text, int64_t T) {
  LORDS_CHECK(T >= 1, ErrorKind::Usage, "sequence length must be >= 1, got {}", T);
  const std::vector<int32_t> stream = tok.encode(text, AddSpecial::No);
  const int64_t n = static_cast<int64_t>(stream.size());
  const bool bos = tok.adds_bos() && tok.bos_id().has_value();
  std::vector<TokenItem> out;
  // Without BOS a window needs a token before its first target; with BOS that token is the BOS.
  for (int64_t s = 0; bos ? s < n : s + 1 < n; s += T) {
    TokenItem w;
    if (bos) w.ids.push_back(*tok.bos_id());
    const int64_t stop = std::min(n, s + (bos ? T : T + 1));
    w.ids.insert(w.ids.end(), stream.begin() + s, stream.begin() + stop);
    w.weights.assign(w.ids.size(), 1.0f);
    w.weights[0] = 0.0f;  // never a target
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace lords::train
