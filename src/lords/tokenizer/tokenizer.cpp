// Tokenizer: added-token matching, the encode pipeline (added tokens -> pre-tokenizer -> BPE), the
// ByteLevel decoder and load(), which finds the tokenizer file of a model directory.
#include "lords/tokenizer/tokenizer.h"

#include <algorithm>
#include <filesystem>

#include "lords/core/error.h"
#include "lords/tokenizer/tokenizer_impl.h"
#include "lords/tokenizer/utf8.h"

namespace lords {
namespace tok {

void AddedMatcher::add(AddedToken t) {
  LORDS_ASSERT(!t.content.empty());
  const auto first = static_cast<uint8_t>(t.content[0]);
  tokens_.push_back(std::move(t));
  std::vector<int32_t>& bucket = by_first_byte_[first];
  bucket.push_back(static_cast<int32_t>(tokens_.size() - 1));
  std::stable_sort(bucket.begin(), bucket.end(), [&](int32_t a, int32_t b) {
    return tokens_[a].content.size() > tokens_[b].content.size();
  });
}

void AddedMatcher::split(std::string_view text, std::vector<Segment>* out) const {
  size_t seg_start = 0;  // start of the plain text not yet emitted
  size_t pos = 0;
  while (pos < text.size()) {
    const AddedToken* hit = nullptr;
    for (int32_t i : by_first_byte_[static_cast<uint8_t>(text[pos])]) {
      if (text.substr(pos).starts_with(tokens_[i].content)) {
        hit = &tokens_[i];  // the bucket is longest first: leftmost-longest
        break;
      }
    }
    if (hit == nullptr) {
      ++pos;
      continue;
    }
    size_t start = pos, end = pos + hit->content.size();
    size_t len = 0;
    while (hit->lstrip && start > seg_start) {
      const size_t prev = prev_utf8_start(text, start);
      if (!is_unicode_whitespace(decode_utf8(text, prev, &len))) break;
      start = prev;
    }
    while (hit->rstrip && end < text.size() &&
           is_unicode_whitespace(decode_utf8(text, end, &len))) {
      end += len;
    }
    if (start > seg_start) out->push_back({text.substr(seg_start, start - seg_start), -1});
    out->push_back({text.substr(start, end - start), hit->id});
    seg_start = pos = end;
  }
  if (seg_start < text.size()) out->push_back({text.substr(seg_start), -1});
}

}  // namespace tok

void Tokenizer::Impl::finish() {
  piece.resize(text.size());
  for (size_t i = 0; i < text.size(); ++i) piece[i] = tok::byte_level_decode(text[i]);
  special.resize(text.size(), 0);
  const auto n = static_cast<int32_t>(text.size());
  for (const auto& [name, id] : {std::pair{"bos", bos}, std::pair{"eos", eos}}) {
    LORDS_CHECK(!id || (*id >= 0 && *id < n),
                ErrorKind::Format,
                "[tokenizer] {}: {} token id {} out of range [0, {})",
                source,
                name,
                *id,
                n);
  }
  for (const std::vector<int32_t>* ids : {&prefix, &suffix}) {
    for (int32_t id : *ids) {
      LORDS_CHECK(id >= 0 && id < n,
                  ErrorKind::Format,
                  "[tokenizer] {}: post-processor token id {} out of range [0, {})",
                  source,
                  id,
                  n);
    }
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, AddSpecial add_special) const {
  const Impl& im = *impl_;
  const size_t bad = tok::find_invalid_utf8(text);
  LORDS_CHECK(bad == tok::kValidUtf8,
              ErrorKind::Format,
              "[tokenizer] <input>: text is not valid UTF-8 at byte {} (0x{:02x})",
              bad,
              static_cast<uint8_t>(text[bad]));
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special == AddSpecial::Yes) ids = im.prefix;

  std::vector<tok::Segment> segments;
  im.added_raw.split(text, &segments);
  if (!im.added_normalized.empty()) {
    std::vector<tok::Segment> second;
    for (const tok::Segment& s : segments) {
      if (s.id >= 0) {
        second.push_back(s);
      } else {
        im.added_normalized.split(s.text, &second);
      }
    }
    segments.swap(second);
  }

  tok::PreTokScratch scratch;
  std::vector<std::string_view> pieces;
  for (const tok::Segment& s : segments) {
    if (s.id >= 0) {
      ids.push_back(s.id);
      continue;
    }
    im.pre.run(s.text, &scratch, &pieces);
    for (std::string_view p : pieces) im.bpe.encode_piece(p, &ids);
  }
  if (add_special == AddSpecial::Yes) ids.insert(ids.end(), im.suffix.begin(), im.suffix.end());
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += token_piece(id);
  return out;
}

// Throws Error{Usage} unless id is inside the vocabulary.
static void check_token_id(const Tokenizer& tok, int32_t id) {
  LORDS_CHECK(id >= 0 && id < tok.vocab_size(),
              ErrorKind::Usage,
              "[tokenizer] {}: token id {} out of range [0, {})",
              tok.source(),
              id,
              tok.vocab_size());
}

const std::string& Tokenizer::token_text(int32_t id) const {
  check_token_id(*this, id);
  return impl_->text[id];
}

const std::string& Tokenizer::token_piece(int32_t id) const {
  check_token_id(*this, id);
  return impl_->piece[id];
}

std::optional<int32_t> Tokenizer::token_id(std::string_view token_text) const {
  const auto& text = impl_->text;
  if (auto id = impl_->bpe.find(token_text)) return id;
  // Added tokens outside the BPE vocab (Llama-3's <|begin_of_text|> ...).
  auto it = std::find(text.begin(), text.end(), token_text);
  if (it == text.end() || token_text.empty()) return std::nullopt;
  return static_cast<int32_t>(it - text.begin());
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->special[id] != 0;
}

std::optional<int32_t> Tokenizer::bos_id() const {
  return impl_->bos;
}
std::optional<int32_t> Tokenizer::eos_id() const {
  return impl_->eos;
}
bool Tokenizer::adds_bos() const {
  return impl_->bos && !impl_->prefix.empty() && impl_->prefix.front() == *impl_->bos;
}
int32_t Tokenizer::vocab_size() const {
  return static_cast<int32_t>(impl_->text.size());
}
const std::string& Tokenizer::source() const {
  return impl_->source;
}

Tokenizer Tokenizer::load(const std::string& model_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir(model_path);
  LORDS_CHECK(
      fs::exists(dir, ec), ErrorKind::Io, "[tokenizer] {}: no such file or directory", model_path);
  const std::string gguf_hint =
      "(for a .gguf file, read its metadata with io::read_gguf and call "
      "Tokenizer::from_gguf_metadata)";
  if (!fs::is_directory(dir, ec)) {
    const std::string name = dir.filename().string();
    LORDS_CHECK(!name.ends_with(".gguf"),
                ErrorKind::Usage,
                "[tokenizer] {}: the tokenizer is in the metadata {}",
                model_path,
                gguf_hint);
    if (name.ends_with(".gguf.json"))
      return from_gguf_metadata(tok::read_json_file(model_path), model_path);
    if (name.ends_with(".json") && name != "config.json" && name != "tokenizer_config.json") {
      return from_hf_json(model_path);
    }
    dir = dir.parent_path();
  }
  if (fs::is_regular_file(dir / "tokenizer.json", ec))
    return from_hf_json((dir / "tokenizer.json").string());
  const std::string gguf_json = (dir / "tokenizer.gguf.json").string();
  if (fs::is_regular_file(gguf_json, ec))
    return from_gguf_metadata(tok::read_json_file(gguf_json), gguf_json);
  LORDS_FAIL(ErrorKind::Io,
             "[tokenizer] {}: no tokenizer.json or tokenizer.gguf.json {}",
             dir.string(),
             gguf_hint);
}

}  // namespace lords
