// JSONL training examples: the three field conventions, groups, blank lines / CRLF / BOM, and every
// bad input refused with one line naming file:line.
#include <gtest/gtest.h>

#include "common/temp_dir.h"
#include "lords/core/error.h"
#include "lords/train/data_jsonl.h"

namespace lords::train {
namespace {

void expect_error(const std::string& text,
                  ErrorKind kind,
                  const std::vector<std::string>& phrases) {
  try {
    parse_jsonl_examples(text, "d.jsonl");
    ADD_FAILURE() << "no error for: " << text;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.kind(), kind) << msg;
    for (const std::string& p : phrases)
      EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(DataJsonl, ThreeFieldConventions) {
  const std::string text =
      "{\"prompt\": \"Who wrote Hamlet?\", \"response\": \"Shakespeare.\"}\n"
      "{\"instruction\": \"Translate to French.\", \"input\": \"cat\", \"output\": \"chat\"}\n"
      "{\"instruction\": \"Say hi.\", \"input\": \"\", \"output\": \"hi\"}\n"
      "{\"question\": \"2+2?\", \"answer\": \"4\", \"group\": 17}\n"
      "{\"prompt\": \"p\", \"response\": \"r\", \"group\": \"q7\", \"extra\": [1, 2]}\n";
  const std::vector<Example> ex = parse_jsonl_examples(text, "d.jsonl");
  ASSERT_EQ(ex.size(), 5u);
  EXPECT_EQ(ex[0].prompt, "Who wrote Hamlet?");
  EXPECT_EQ(ex[0].response, "Shakespeare.");
  EXPECT_EQ(ex[1].prompt, "Translate to French.\n\ncat");
  EXPECT_EQ(ex[1].response, "chat");
  EXPECT_EQ(ex[2].prompt, "Say hi.");
  EXPECT_EQ(ex[3].prompt, "2+2?");
  EXPECT_EQ(ex[3].group, "17");
  EXPECT_EQ(ex[4].group, "q7");
  EXPECT_EQ(ex[0].group, "");
  for (size_t i = 0; i < ex.size(); ++i) EXPECT_EQ(ex[i].line, static_cast<int64_t>(i + 1));
}

TEST(DataJsonl, BlankLinesCrlfAndBom) {
  const std::string text =
      "\xEF\xBB\xBF{\"prompt\":\"a\",\"response\":\"b\"}\r\n\r\n  "
      "\n{\"prompt\":\"c\",\"response\":\"é\"}";
  const std::vector<Example> ex = parse_jsonl_examples(text, "d.jsonl");
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].response, "b");
  EXPECT_EQ(ex[1].line, 4);
  EXPECT_EQ(ex[1].response, "é");
}

TEST(DataJsonl, BadInputNamesFileAndLine) {
  const std::string ok = "{\"prompt\":\"a\",\"response\":\"b\"}\n";
  expect_error(ok + "{\"prompt\": \"a\", \"response\": }\n",
               ErrorKind::Format,
               {"d.jsonl:2:", "invalid JSON"});
  expect_error(
      ok + "[1, 2]\n", ErrorKind::Format, {"d.jsonl:2:", "expected a JSON object", "array"});
  expect_error(ok + ok + "{\"prompt\":\"a\"}\n",
               ErrorKind::Format,
               {"d.jsonl:3:", "has \"prompt\" but no \"response\""});
  expect_error("{\"answer\":\"a\"}\n",
               ErrorKind::Format,
               {"d.jsonl:1:", "has \"answer\" but no \"question\""});
  expect_error(
      "{\"text\":\"a\"}\n", ErrorKind::Format, {"d.jsonl:1:", "no prompt/response fields"});
  expect_error("{\"prompt\":\"a\",\"response\":3}\n",
               ErrorKind::Format,
               {"d.jsonl:1:", "\"response\" must be a string", "number"});
  expect_error("{\"instruction\":\"a\",\"input\":null,\"output\":\"b\"}\n",
               ErrorKind::Format,
               {"d.jsonl:1:", "\"input\" must be a string"});
  expect_error("{\"prompt\":\"a\",\"response\":\"\"}\n",
               ErrorKind::Format,
               {"d.jsonl:1:", "empty \"response\""});
  expect_error("{\"prompt\":\"\",\"response\":\"b\"}\n",
               ErrorKind::Format,
               {"d.jsonl:1:", "empty \"prompt\""});
  expect_error("{\"prompt\":\"a\",\"response\":\"b\",\"group\":1.5}\n",
               ErrorKind::Format,
               {"d.jsonl:1:", "\"group\" must be a string or an integer"});
  expect_error("{\"prompt\":\"a\",\"response\":\"\xff\"}\n",
               ErrorKind::Format,
               {"d.jsonl:1:", "invalid JSON"});
  expect_error("", ErrorKind::Format, {"d.jsonl", "no examples (empty file)"});
  expect_error("\n  \n\r\n", ErrorKind::Format, {"d.jsonl", "no examples"});
}

TEST(DataJsonl, Files) {
  test::TempDir tmp;
  test::write_bytes(tmp.file("a.jsonl"), "{\"question\":\"q\",\"answer\":\"a\"}\n");
  EXPECT_EQ(read_jsonl_examples(tmp.file("a.jsonl")).size(), 1u);
  try {
    read_jsonl_examples(tmp.file("missing.jsonl"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    EXPECT_NE(std::string(e.what()).find("missing.jsonl"), std::string::npos);
  }
  EXPECT_EQ(data_kind_of("x/train.jsonl"), DataKind::Jsonl);
  EXPECT_EQ(data_kind_of("x/train.json"), DataKind::Jsonl);
  EXPECT_EQ(data_kind_of("x/hamlet.txt"), DataKind::Text);
  EXPECT_EQ(data_kind_of("x/README"), DataKind::Text);
}

}  // namespace
}  // namespace lords::train
