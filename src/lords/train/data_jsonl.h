// Fine-tuning examples from JSONL: one JSON object per line, its prompt and response under one of
// three field conventions (the first whose keys appear wins):
//   {"prompt": "..", "response": ".."}
//   {"instruction": "..", "input": "..", "output": ".."}   Alpaca: prompt = instruction, then a
//   blank
//                                                          line and input when input is non-empty
//   {"question": "..", "answer": ".."}
// An optional "group" (string or integer) keeps related examples together on one side of a
// train/held-out split (FanOutQA: a question and its sub-questions). Blank lines are skipped, a
// UTF-8 byte-order mark and CRLF line ends are accepted. Every error is one line naming file:line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lords::train {

struct Example {
  std::string prompt;
  std::string response;
  std::string group;  // "" = no group given: the example is a split unit of its own
  int64_t line = 0;   // 1-based line of the source, for messages
};

// source names the text in errors ("data/train.jsonl"). Throws Error{Format} on invalid JSON, a
// line that is not an object, missing or non-string fields, an empty prompt or response, and a text
// without examples.
std::vector<Example> parse_jsonl_examples(std::string_view text, const std::string& source);
// The same for a file; Error{Io} when it cannot be read.
std::vector<Example> read_jsonl_examples(const std::string& path);

enum class DataKind { Jsonl, Text };
// By extension: .jsonl and .json hold examples, anything else is plain text.
DataKind data_kind_of(const std::string& path);

}  // namespace lords::train
