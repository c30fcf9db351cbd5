// Tokenizer::from_hf_json: the subset of HF tokenizers' tokenizer.json that byte-level BPE models
// use.
//   model: BPE (vocab, merges as "a b" strings or [a, b] pairs, unk_token, ignore_merges)
//   pre_tokenizer: Sequence / Split(Regex|String, Isolated) / Digits / ByteLevel (last)
//   normalizer: none or NFC (see tokenizer.h); decoder: ByteLevel
//   post_processor: none / ByteLevel / TemplateProcessing / RobertaProcessing / BertProcessing /
//   Sequence
// Anything else throws Error{Unsupported} naming the file and the component.
#include <filesystem>
#include <fstream>

#include "lords/core/error.h"
#include "lords/tokenizer/tokenizer_impl.h"

namespace lords {
namespace tok {

using json = nlohmann::json;

json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LORDS_CHECK(in.good(), ErrorKind::Io, "[tokenizer] {}: cannot open file", path);
  try {
    return json::parse(in);
  } catch (const json::parse_error& e) {
    LORDS_FAIL(ErrorKind::Format, "[tokenizer] {}: invalid JSON: {}", path, e.what());
  }
}

namespace {

// obj[key], which must be present and non-null; field is its dotted path for the message.
const json& need(const json& obj,
                 const char* key,
                 const std::string& field,
                 const std::string& source) {
  auto it = obj.is_object() ? obj.find(key) : obj.end();
  LORDS_CHECK(it != obj.end() && !it->is_null(),
              ErrorKind::Format,
              "[tokenizer] {}: missing key '{}'",
              source,
              field);
  return *it;
}

bool flag(const json& obj, const char* key, bool fallback) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? fallback : it->get<bool>();
}

// Appends the steps of one HF pre-tokenizer; *byte_level is set once a ByteLevel step is seen.
void add_pre_tokenizer(const json& node,
                       const std::string& source,
                       PreTokenizer* pre,
                       bool* byte_level) {
  const std::string type = need(node, "type", "pre_tokenizer.type", source).get<std::string>();
  const std::string where = source + " pre_tokenizer " + type;
  LORDS_CHECK(!*byte_level,
              ErrorKind::Unsupported,
              "[tokenizer] {}: pre-tokenizer '{}' after ByteLevel is not supported",
              source,
              type);
  if (type == "Sequence") {
    for (const json& p : need(node, "pretokenizers", "pre_tokenizer.pretokenizers", source)) {
      add_pre_tokenizer(p, source, pre, byte_level);
    }
  } else if (type == "Split") {
    const std::string behavior = node.value("behavior", "Isolated");
    LORDS_CHECK(behavior == "Isolated" && !flag(node, "invert", false),
                ErrorKind::Unsupported,
                "[tokenizer] {}: Split behavior '{}'{} is not supported (Isolated only)",
                source,
                behavior,
                flag(node, "invert", false) ? " with invert" : "");
    const json& pattern = need(node, "pattern", "pre_tokenizer.pattern", source);
    if (pattern.contains("Regex")) {
      pre->add_step(
          {PrefixSpace::No, Regex(pattern["Regex"].get<std::string>(), PatternKind::Regex, where)});
    } else {
      const std::string literal = need(pattern, "String", "pre_tokenizer.pattern.String", source);
      pre->add_step({PrefixSpace::No, Regex(literal, PatternKind::Literal, where)});
    }
  } else if (type == "Digits") {
    const bool individual = flag(node, "individual_digits", false);
    pre->add_step({PrefixSpace::No,
                   Regex(individual ? kDigitPattern : kDigitsPattern, PatternKind::Regex, where)});
  } else if (type == "ByteLevel") {
    PreTokStep step;
    step.prefix_space = flag(node, "add_prefix_space", true) ? PrefixSpace::Yes : PrefixSpace::No;
    if (flag(node, "use_regex", true)) step.split.emplace(kGpt2Pattern, PatternKind::Regex, where);
    pre->add_step(std::move(step));
    *byte_level = true;
  } else {
    LORDS_FAIL(ErrorKind::Unsupported,
               "[tokenizer] {}: pre-tokenizer '{}' is not supported",
               source,
               type);
  }
}

void check_normalizer(const json& node, const std::string& source) {
  if (node.is_null()) return;
  const std::string type = need(node, "type", "normalizer.type", source).get<std::string>();
  if (type == "Sequence") {
    for (const json& n : need(node, "normalizers", "normalizer.normalizers", source))
      check_normalizer(n, source);
    return;
  }
  LORDS_CHECK(type == "NFC",
              ErrorKind::Unsupported,
              "[tokenizer] {}: normalizer '{}' is not supported",
              source,
              type);
}

// ids of a post-processor's special token given by name (TemplateProcessing) or [name, id]
// (Roberta/Bert).
std::vector<int32_t> template_ids(const json& special_tokens,
                                  const std::string& name,
                                  const std::string& source) {
  const json& entry =
      need(special_tokens, name.c_str(), "post_processor.special_tokens." + name, source);
  return need(entry, "ids", "post_processor.special_tokens." + name + ".ids", source)
      .get<std::vector<int32_t>>();
}

void add_post_processor(const json& node, const std::string& source, Tokenizer::Impl* im) {
  if (node.is_null()) return;
  const std::string type = need(node, "type", "post_processor.type", source).get<std::string>();
  if (type == "Sequence") {
    for (const json& p : need(node, "processors", "post_processor.processors", source)) {
      add_post_processor(p, source, im);
    }
  } else if (type == "TemplateProcessing") {
    const json& specials = need(node, "special_tokens", "post_processor.special_tokens", source);
    bool after_text = false;
    for (const json& item : need(node, "single", "post_processor.single", source)) {
      if (item.contains("Sequence")) {
        after_text = true;
        continue;
      }
      const std::string name =
          need(item, "SpecialToken", "post_processor.single[].SpecialToken", source)
              .at("id")
              .get<std::string>();
      std::vector<int32_t>& dst = after_text ? im->suffix : im->prefix;
      for (int32_t id : template_ids(specials, name, source)) dst.push_back(id);
    }
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    im->prefix.push_back(need(node, "cls", "post_processor.cls", source).at(1).get<int32_t>());
    im->suffix.push_back(need(node, "sep", "post_processor.sep", source).at(1).get<int32_t>());
  } else {
    LORDS_CHECK(type == "ByteLevel",
                ErrorKind::Unsupported,
                "[tokenizer] {}: post-processor '{}' is not supported",
                source,
                type);
  }
}

std::vector<std::pair<std::string, std::string>> parse_merges(const json& merges,
                                                              const std::string& source) {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (const json& m : merges) {
    if (m.is_array()) {
      LORDS_CHECK(m.size() == 2,
                  ErrorKind::Format,
                  "[tokenizer] {}: merge {} is not a pair",
                  source,
                  out.size());
      out.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      continue;
    }
    const std::string s = m.get<std::string>();
    const size_t sp = s.find(' ', 1);
    LORDS_CHECK(sp != std::string::npos,
                ErrorKind::Format,
                "[tokenizer] {}: merge {} '{}' is not 'a b'",
                source,
                out.size(),
                s);
    out.emplace_back(s.substr(0, sp), s.substr(sp + 1));
  }
  return out;
}

// The id of a tokenizer_config.json token entry ("<s>" or {"content": "<s>", ...}).
std::optional<int32_t> config_token(const json& config,
                                    const char* key,
                                    const Tokenizer::Impl& im) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  const std::string content = it->is_object() ? it->value("content", "") : it->get<std::string>();
  for (size_t i = 0; i < im.text.size(); ++i) {
    if (!content.empty() && im.text[i] == content) return static_cast<int32_t>(i);
  }
  return std::nullopt;
}

// The model section must be plain BPE: no WordPiece/Unigram, no byte fallback, no subword affixes.
void check_bpe_model(const json& model, const std::string& source) {
  const std::string type = model.value("type", model.contains("merges") ? "BPE" : "");
  LORDS_CHECK(type == "BPE",
              ErrorKind::Unsupported,
              "[tokenizer] {}: tokenizer model type '{}' is not supported (byte-level BPE only)",
              source,
              type);
  LORDS_CHECK(!flag(model, "byte_fallback", false),
              ErrorKind::Unsupported,
              "[tokenizer] {}: BPE byte_fallback is not supported (byte-level BPE only)",
              source);
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    LORDS_CHECK(model.value(key, json()).is_null() || model[key].get<std::string>().empty(),
                ErrorKind::Unsupported,
                "[tokenizer] {}: BPE {} is not supported",
                source,
                key);
  }
}

// Fills the id -> text table from the vocab and the added tokens, and the added-token matchers.
void add_tokens(const json& j,
                const StringIdMap& vocab,
                const std::string& source,
                Tokenizer::Impl* im) {
  const json added = j.value("added_tokens", json::array());
  int64_t n = 0;
  for (const auto& [text, id] : vocab) n = std::max<int64_t>(n, int64_t{id} + 1);
  for (const json& a : added) {
    n = std::max<int64_t>(n, need(a, "id", "added_tokens[].id", source).get<int64_t>() + 1);
  }
  LORDS_CHECK(n <= (int64_t{1} << 24),
              ErrorKind::Format,
              "[tokenizer] {}: token id {} is implausibly large",
              source,
              n - 1);
  im->text.resize(static_cast<size_t>(n));
  im->special.resize(static_cast<size_t>(n), 0);
  for (const auto& [text, id] : vocab) {
    LORDS_CHECK(
        id >= 0, ErrorKind::Format, "[tokenizer] {}: model.vocab '{}' has id {}", source, text, id);
    im->text[id] = text;
  }
  for (const json& a : added) {
    AddedToken t{need(a, "content", "added_tokens[].content", source).get<std::string>(),
                 a["id"].get<int32_t>(),
                 flag(a, "lstrip", false),
                 flag(a, "rstrip", false)};
    LORDS_CHECK(!t.content.empty() && t.id >= 0,
                ErrorKind::Format,
                "[tokenizer] {}: added token {} is empty or has a negative id",
                source,
                t.id);
    LORDS_CHECK(!flag(a, "single_word", false),
                ErrorKind::Unsupported,
                "[tokenizer] {}: added token '{}' has single_word, which is not supported",
                source,
                t.content);
    const bool special = flag(a, "special", false);
    im->text[t.id] = t.content;
    im->special[t.id] = special ? 1 : 0;
    // HF's AddedToken default: normalized unless special.
    (flag(a, "normalized", !special) ? im->added_normalized : im->added_raw).add(std::move(t));
  }
}

std::shared_ptr<Tokenizer::Impl> build_hf(const json& j, const std::string& source) {
  auto im = std::make_shared<Tokenizer::Impl>();
  im->source = source;
  const json& model = need(j, "model", "model", source);
  check_bpe_model(model, source);
  check_normalizer(j.value("normalizer", json()), source);
  bool byte_level = false;
  add_pre_tokenizer(
      need(j, "pre_tokenizer", "pre_tokenizer", source), source, &im->pre, &byte_level);
  LORDS_CHECK(byte_level,
              ErrorKind::Unsupported,
              "[tokenizer] {}: the pre-tokenizer has no ByteLevel step (byte-level BPE only)",
              source);
  const std::string decoder = need(j, "decoder", "decoder", source).value("type", "");
  LORDS_CHECK(decoder == "ByteLevel",
              ErrorKind::Unsupported,
              "[tokenizer] {}: decoder '{}' is not supported (ByteLevel only)",
              source,
              decoder);

  StringIdMap vocab = need(model, "vocab", "model.vocab", source).get<StringIdMap>();
  add_tokens(j, vocab, source, im.get());
  BpeOptions options;
  options.ignore_merges = flag(model, "ignore_merges", false);
  if (model.contains("unk_token") && !model["unk_token"].is_null()) {
    auto it = vocab.find(model["unk_token"].get<std::string>());
    if (it != vocab.end()) options.unk_id = it->second;
  }
  const auto merges = parse_merges(need(model, "merges", "model.merges", source), source);
  im->bpe = BpeModel(std::move(vocab), merges, options, source);
  add_post_processor(j.value("post_processor", json()), source, im.get());
  return im;
}

}  // namespace
}  // namespace tok

Tokenizer Tokenizer::from_hf_json(const nlohmann::json& tokenizer_json, const std::string& source) {
  try {
    auto im = tok::build_hf(tokenizer_json, source);
    if (!im->prefix.empty()) im->bos = im->prefix.front();
    im->finish();
    return Tokenizer(std::move(im));
  } catch (const nlohmann::json::exception& e) {
    LORDS_FAIL(ErrorKind::Format, "[tokenizer] {}: {}", source, e.what());
  }
}

Tokenizer Tokenizer::from_hf_json(const std::string& tokenizer_json_path) {
  const nlohmann::json j = tok::read_json_file(tokenizer_json_path);
  const std::string config_path =
      (std::filesystem::path(tokenizer_json_path).parent_path() / "tokenizer_config.json").string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(config_path, ec))
    return from_hf_json(j, tokenizer_json_path);
  const nlohmann::json config = tok::read_json_file(config_path);
  try {
    auto im = tok::build_hf(j, tokenizer_json_path);
    im->bos = tok::config_token(config, "bos_token", *im);
    if (!im->bos && !im->prefix.empty()) im->bos = im->prefix.front();
    im->eos = tok::config_token(config, "eos_token", *im);
    im->finish();
    return Tokenizer(std::move(im));
  } catch (const nlohmann::json::exception& e) {
    LORDS_FAIL(ErrorKind::Format, "[tokenizer] {}: {}", tokenizer_json_path, e.what());
  }
}

}  // namespace lords
