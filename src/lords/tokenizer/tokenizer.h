// Byte-level BPE tokenizer (GPT-2 / Llama-3 / SmolLM2 / Qwen2), loaded from an HF tokenizer.json or
// from the tokenizer.* keys of GGUF metadata. encode: added tokens (<|im_start|> ...) are matched
// whole first, as HF does; the rest is pre-tokenized (regex splits), byte-level mapped and
// BPE-merged by rank. Ids equal HF `tokenizers` (checked against fixtures made by
// scripts/make_tokenizer_fixtures.py). decode is the ByteLevel decoder. An HF "NFC" normalizer is
// accepted and not applied (text already in NFC, which is nearly all text, is unaffected; llama.cpp
// does the same).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lords {

// Yes: add what the model's tokenizer adds with HF add_special_tokens=True (its BOS for Llama-3;
// nothing for SmolLM2, whose tokenizer adds no BOS), i.e. the post-processor template or GGUF
// add_bos/add_eos_token.
enum class AddSpecial { No, Yes };

class Tokenizer {
 public:
  // Reads an HF tokenizer.json; bos/eos come from a tokenizer_config.json beside it when there is
  // one, else bos from the post-processor template. Throws Error{Unsupported} for anything but
  // byte-level BPE.
  static Tokenizer from_hf_json(const std::string& tokenizer_json_path);
  // The same from an already parsed tokenizer.json; source names it in errors.
  static Tokenizer from_hf_json(const nlohmann::json& tokenizer_json, const std::string& source);
  // kv: GGUF metadata key -> JSON value (io::read_gguf's output, or a tokenizer.gguf.json file);
  // source_path names the file in errors.
  static Tokenizer from_gguf_metadata(const nlohmann::json& kv, const std::string& source_path);
  // model_path: a directory holding tokenizer.json (preferred) or tokenizer.gguf.json, or one of
  // those files, or another file of a model directory. A .gguf file's metadata must be read by the
  // caller (io::read_gguf) and passed to from_gguf_metadata.
  static Tokenizer load(const std::string& model_path);

  // Throws Error{Format} when text is not valid UTF-8.
  std::vector<int32_t> encode(std::string_view text, AddSpecial add_special) const;
  // Concatenated bytes of the tokens, special tokens included; a sequence that splits a multi-byte
  // character yields its partial bytes (no U+FFFD substitution), so pieces can be streamed.
  std::string decode(const std::vector<int32_t>& ids) const;
  // The vocab string as stored ("Ġthe", "<|im_end|>").
  const std::string& token_text(int32_t id) const;
  // The bytes the token decodes to (" the").
  const std::string& token_piece(int32_t id) const;
  std::optional<int32_t> token_id(std::string_view token_text) const;
  bool is_special(int32_t id) const;  // control tokens (HF special added tokens, GGUF token_type 3)

  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  bool adds_bos() const;  // encode(..., AddSpecial::Yes) starts with bos
  int32_t vocab_size() const;
  const std::string& source() const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl>
      impl_;  // immutable after load: copies share it, encode is thread-safe
};

}  // namespace lords
