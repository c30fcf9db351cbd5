// Chat formatting and loss masks: with ChatML exactly the response and its <|im_end|> carry weight;
// plain format with a BOS-adding vocab; text windows that overlap by one token so every token after
// the first is a target once. Tokenizers are the fixtures of tests/tokenizer (SmolLM2's real vocab,
// tiny Qwen2 and Llama-3 vocabs).
#include <gtest/gtest.h>

#include "lords/core/error.h"
#include "lords/train/data_format.h"

namespace lords::train {
namespace {

Tokenizer fixture_tokenizer(const std::string& name) {
  return Tokenizer::from_hf_json(std::string(LORDS_SOURCE_DIR) + "/tests/tokenizer/fixtures/" +
                                 name + "_tokenizer.json");
}

// The ids of item with weight w, decoded.
std::string decode_where(const Tokenizer& tok, const TokenItem& item, float w) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < item.ids.size(); ++i)
    if (item.weights[i] == w) ids.push_back(item.ids[i]);
  return tok.decode(ids);
}

void expect_chatml_mask(const Tokenizer& tok) {
  ASSERT_EQ(default_prompt_format(tok), PromptFormat::ChatMl);
  const Example ex{"What is the capital of France?", " Paris, of course.\nIt is.", "", 3};
  const TokenItem item = format_example(tok, ex, {PromptFormat::ChatMl, ""}, "d.jsonl");
  ASSERT_EQ(item.ids.size(), item.weights.size());
  EXPECT_EQ(tok.decode(item.ids),
            "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
            " Paris, of course.\nIt is.<|im_end|>\n");
  // Weight 1 on exactly the response and its closing <|im_end|>, one contiguous run.
  EXPECT_EQ(decode_where(tok, item, 1.0f), " Paris, of course.\nIt is.<|im_end|>");
  const std::vector<int32_t> response = tok.encode(ex.response, AddSpecial::No);
  const size_t first = item.ids.size() - response.size() - 2;  // response, <|im_end|>, "\n"
  for (size_t i = 0; i < item.ids.size(); ++i)
    EXPECT_EQ(item.weights[i], i >= first && i <= first + response.size() ? 1.0f : 0.0f) << i;
  EXPECT_EQ(item.ids[first + response.size()], *tok.token_id("<|im_end|>"));
  EXPECT_EQ(
      decode_where(tok, item, 0.0f),
      "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n\n");

  const TokenItem sys = format_example(tok, ex, {PromptFormat::ChatMl, "Be brief."}, "d.jsonl");
  EXPECT_EQ(
      tok.decode(sys.ids).rfind("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n", 0),
      0u);
  EXPECT_EQ(decode_where(tok, sys, 1.0f), " Paris, of course.\nIt is.<|im_end|>");
}

TEST(DataFormat, ChatMlMasksExactlyTheResponseSmolLM2) {
  expect_chatml_mask(fixture_tokenizer("smollm2"));
}
TEST(DataFormat, ChatMlMasksExactlyTheResponseQwen2) {
  expect_chatml_mask(fixture_tokenizer("tiny_qwen2"));
}

TEST(DataFormat, PlainWithBosAndNoChatTokens) {
  const Tokenizer tok = fixture_tokenizer("tiny_llama3");
  ASSERT_TRUE(tok.adds_bos());
  EXPECT_EQ(default_prompt_format(tok), PromptFormat::Plain);
  const Example ex{"Fair is foul", "and foul is fair", "", 1};
  const TokenItem item = format_example(tok, ex, {PromptFormat::Plain, ""}, "d.jsonl");
  EXPECT_EQ(item.ids[0], *tok.bos_id());
  EXPECT_EQ(item.weights[0], 0.0f);
  std::vector<int32_t> resp_ids = tok.encode("and foul is fair", AddSpecial::No);
  if (tok.eos_id()) resp_ids.push_back(*tok.eos_id());
  EXPECT_EQ(decode_where(tok, item, 0.0f), tok.decode({*tok.bos_id()}) + "Fair is foul\n");
  EXPECT_EQ(decode_where(tok, item, 1.0f), tok.decode(resp_ids));
  try {
    format_example(tok, ex, {PromptFormat::ChatMl, ""}, "d.jsonl");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("<|im_start|>"), std::string::npos) << e.what();
  }
  EXPECT_EQ(prompt_format_from_name("chatml"), PromptFormat::ChatMl);
  EXPECT_EQ(prompt_format_name(prompt_format_from_name("plain")), "plain");
  EXPECT_THROW(prompt_format_from_name("alpaca"), Error);
}

TEST(DataFormat, TextWindowsCoverEveryTokenOnce) {
  const std::string text =
      "When shall we three meet again\nIn thunder, lightning, or in rain?\nWhen the hurlyburly's "
      "done,\n"
      "When the battle's lost and won.";
  for (const char* name : {"tiny_qwen2", "tiny_llama3"}) {
    const Tokenizer tok = fixture_tokenizer(name);
    const bool bos = tok.adds_bos();
    const std::vector<int32_t> stream = tok.encode(text, AddSpecial::No);
    for (int64_t T :
         {int64_t{1}, int64_t{4}, int64_t{7}, static_cast<int64_t>(stream.size()), int64_t{1000}}) {
      const std::vector<TokenItem> w = text_windows(tok, text, T);
      // Concatenated targets (ids[1..]) of all windows are the stream (without its first token
      // unless a BOS precedes it), each once.
      std::vector<int32_t> targets;
      for (const TokenItem& item : w) {
        ASSERT_LE(static_cast<int64_t>(item.ids.size()), T + 1);
        ASSERT_GE(item.ids.size(), 2u);
        EXPECT_EQ(item.weights[0], 0.0f);
        if (bos) {
          EXPECT_EQ(item.ids[0], *tok.bos_id());
        }
        targets.insert(targets.end(), item.ids.begin() + 1, item.ids.end());
        for (size_t i = 1; i < item.weights.size(); ++i) EXPECT_EQ(item.weights[i], 1.0f);
      }
      const std::vector<int32_t> want(stream.begin() + (bos ? 0 : 1), stream.end());
      EXPECT_EQ(targets, want) << name << " T=" << T;
      const int64_t n = static_cast<int64_t>(want.size());
      EXPECT_EQ(static_cast<int64_t>(w.size()), (n + T - 1) / T) << name << " T=" << T;
    }
  }
  EXPECT_TRUE(text_windows(fixture_tokenizer("tiny_qwen2"), "a", 8).empty());
  EXPECT_THROW(text_windows(fixture_tokenizer("tiny_qwen2"), "abc", 0), Error);
}

}  // namespace
}  // namespace lords::train
