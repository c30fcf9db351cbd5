// Tokenizer::from_gguf_metadata: the tokenizer.ggml.* keys llama.cpp's convert_hf_to_gguf.py writes
// for a "gpt2" (byte-level BPE) vocab. tokens[i] is the vocab string of id i; token_type 3
// (control) and 4 (user-defined) tokens are matched whole in the text like HF added tokens (2,
// unknown, too, as llama.cpp does); merges are "a b" strings in rank order; tokenizer.ggml.pre
// picks the pre-tokenizer.
#include "lords/core/error.h"
#include "lords/tokenizer/tokenizer_impl.h"

namespace lords {
namespace tok {
namespace {

using json = nlohmann::json;

// GGUF token types (llama.cpp's llama_token_type).
constexpr int kTypeUnknown = 2;
constexpr int kTypeControl = 3;
constexpr int kTypeUserDefined = 4;

const json& need(const json& kv, const char* key, const std::string& source) {
  auto it = kv.find(key);
  LORDS_CHECK(it != kv.end() && !it->is_null(),
              ErrorKind::Format,
              "[tokenizer] {}: missing key '{}'",
              source,
              key);
  return *it;
}

std::optional<int32_t> optional_id(const json& kv, const char* key) {
  auto it = kv.find(key);
  if (it == kv.end() || it->is_null()) return std::nullopt;
  return it->get<int32_t>();
}

// Fills the id -> text table, the control flags and the added-token matcher; returns text -> id.
StringIdMap read_tokens(const json& kv, const std::string& source, Tokenizer::Impl* im) {
  im->text = need(kv, "tokenizer.ggml.tokens", source).get<std::vector<std::string>>();
  const size_t n = im->text.size();
  LORDS_CHECK(n > 0 && n <= (size_t{1} << 24),
              ErrorKind::Format,
              "[tokenizer] {}: tokenizer.ggml.tokens has {} entries",
              source,
              n);
  std::vector<int32_t> types(n, 1);
  if (kv.contains("tokenizer.ggml.token_type")) {
    types = kv["tokenizer.ggml.token_type"].get<std::vector<int32_t>>();
    LORDS_CHECK(
        types.size() == n,
        ErrorKind::Format,
        "[tokenizer] {}: tokenizer.ggml.token_type has {} entries, expected {} (one per token)",
        source,
        types.size(),
        n);
  }
  im->special.assign(n, 0);
  StringIdMap vocab;
  vocab.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto id = static_cast<int32_t>(i);
    vocab[im->text[i]] = id;  // a duplicated string keeps its last id, as in llama.cpp
    const int type = types[i];
    if (type != kTypeUnknown && type != kTypeControl && type != kTypeUserDefined) continue;
    im->special[i] = type == kTypeUserDefined ? 0 : 1;
    if (!im->text[i].empty()) im->added_raw.add({im->text[i], id, false, false});
  }
  return vocab;
}

std::vector<std::pair<std::string, std::string>> read_merges(const json& kv,
                                                             const std::string& source) {
  std::vector<std::pair<std::string, std::string>> merges;
  const json& merge_list = need(kv, "tokenizer.ggml.merges", source);
  merges.reserve(merge_list.size());
  for (const json& m : merge_list) {
    const std::string s = m.get<std::string>();
    const size_t sp = s.find(' ', 1);
    LORDS_CHECK(sp != std::string::npos,
                ErrorKind::Format,
                "[tokenizer] {}: tokenizer.ggml.merges[{}] '{}' is not 'a b'",
                source,
                merges.size(),
                s);
    merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
  }
  return merges;
}

// bos/eos ids and what AddSpecial::Yes adds. llama.cpp's defaults: Llama-3 adds BOS, the other BPE
// vocabs add nothing; tokenizer.ggml.add_bos_token / add_eos_token override them.
void read_bos_eos(const json& kv,
                  const std::string& pre,
                  const std::string& source,
                  Tokenizer::Impl* im) {
  im->bos = optional_id(kv, "tokenizer.ggml.bos_token_id");
  im->eos = optional_id(kv, "tokenizer.ggml.eos_token_id");
  const bool add_bos =
      kv.value("tokenizer.ggml.add_bos_token", pre == "llama-bpe" || pre == "llama3");
  const bool add_eos = kv.value("tokenizer.ggml.add_eos_token", false);
  LORDS_CHECK(!add_bos || im->bos,
              ErrorKind::Format,
              "[tokenizer] {}: tokenizer.ggml.add_bos_token is set but tokenizer.ggml.bos_token_id "
              "is missing",
              source);
  LORDS_CHECK(!add_eos || im->eos,
              ErrorKind::Format,
              "[tokenizer] {}: tokenizer.ggml.add_eos_token is set but tokenizer.ggml.eos_token_id "
              "is missing",
              source);
  if (add_bos) im->prefix.push_back(*im->bos);
  if (add_eos) im->suffix.push_back(*im->eos);
}

std::shared_ptr<Tokenizer::Impl> build_gguf(const json& kv, const std::string& source) {
  LORDS_CHECK(
      kv.is_object(), ErrorKind::Format, "[tokenizer] {}: metadata is not a JSON object", source);
  const std::string model = need(kv, "tokenizer.ggml.model", source).get<std::string>();
  LORDS_CHECK(
      model == "gpt2",
      ErrorKind::Unsupported,
      "[tokenizer] {}: tokenizer.ggml.model '{}' is not supported (byte-level BPE 'gpt2' only)",
      source,
      model);
  // Files converted before llama.cpp added the key have none; llama.cpp then uses "default".
  const std::string pre = kv.value("tokenizer.ggml.pre", std::string("default"));

  auto im = std::make_shared<Tokenizer::Impl>();
  im->source = source;
  BpeOptions options;
  im->pre = pre_tokenizer_for_gguf(pre, source, &options.ignore_merges);
  StringIdMap vocab = read_tokens(kv, source, im.get());
  im->bpe = BpeModel(std::move(vocab), read_merges(kv, source), options, source);
  read_bos_eos(kv, pre, source, im.get());
  return im;
}

}  // namespace
}  // namespace tok

Tokenizer Tokenizer::from_gguf_metadata(const nlohmann::json& kv, const std::string& source_path) {
  try {
    auto im = tok::build_gguf(kv, source_path);
    im->finish();
    return Tokenizer(std::move(im));
  } catch (const nlohmann::json::exception& e) {
    LORDS_FAIL(ErrorKind::Format, "[tokenizer] {}: {}", source_path, e.what());
  }
}

}  // namespace lords
