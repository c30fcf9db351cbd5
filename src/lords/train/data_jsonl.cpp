#include "lords/train/data_jsonl.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lords/core/error.h"

namespace lords::train {
namespace {

using json = nlohmann::json;

struct FieldSet {
  const char* prompt;
  const char* response;
};
constexpr FieldSet kFieldSets[] = {
    {"prompt", "response"}, {"instruction", "output"}, {"question", "answer"}};

// "[json.exception.parse_error.101] parse error at line 1, column 7: syntax error ..." -> the part
// after the position (the line number of nlohmann's message is always 1 here: we parse one line).
std::string parse_error_reason(const json::parse_error& e) {
  const std::string msg = e.what();
  const size_t column = msg.find("column ");
  const size_t colon = column == std::string::npos ? std::string::npos : msg.find(": ", column);
  return colon == std::string::npos ? msg : msg.substr(colon + 2);
}

const char* json_type_name(const json& v) {
  return v.type_name();
}

std::string string_field(const json& obj, const char* key, const std::string& where) {
  const json& v = obj.at(key);
  LORDS_CHECK(v.is_string(),
              ErrorKind::Format,
              "{}: field \"{}\" must be a string, got {}",
              where,
              key,
              json_type_name(v));
  return v.get<std::string>();
}

Example example_from_object(const json& obj, const std::string& where) {
  LORDS_CHECK(obj.is_object(),
              ErrorKind::Format,
              "{}: expected a JSON object, got {}",
              where,
              json_type_name(obj));
  const FieldSet* set = nullptr;
  for (const FieldSet& s : kFieldSets) {
    if (obj.contains(s.prompt) || obj.contains(s.response)) {
      set = &s;
      break;
    }
  }
  LORDS_CHECK(set != nullptr,
              ErrorKind::Format,
              "{}: no prompt/response fields (expected \"prompt\"+\"response\", "
              "\"instruction\"+\"output\" or "
              "\"question\"+\"answer\")",
              where);
  LORDS_CHECK(obj.contains(set->prompt),
              ErrorKind::Format,
              "{}: has \"{}\" but no \"{}\"",
              where,
              set->response,
              set->prompt);
  LORDS_CHECK(obj.contains(set->response),
              ErrorKind::Format,
              "{}: has \"{}\" but no \"{}\"",
              where,
              set->prompt,
              set->response);
  Example ex;
  ex.prompt = string_field(obj, set->prompt, where);
  ex.response = string_field(obj, set->response, where);
  if (set == &kFieldSets[1] && obj.contains("input")) {
    const std::string input = string_field(obj, "input", where);
    if (!input.empty()) ex.prompt += "\n\n" + input;
  }
  LORDS_CHECK(!ex.prompt.empty(), ErrorKind::Format, "{}: empty \"{}\"", where, set->prompt);
  LORDS_CHECK(!ex.response.empty(), ErrorKind::Format, "{}: empty \"{}\"", where, set->response);
  if (obj.contains("group")) {
    const json& g = obj.at("group");
    LORDS_CHECK(g.is_string() || g.is_number_integer(),
                ErrorKind::Format,
                "{}: field \"group\" must be a string or an integer, got {}",
                where,
                json_type_name(g));
    ex.group = g.is_string() ? g.get<std::string>() : g.dump();
  }
  return ex;
}

}  // namespace

std::vector<Example> parse_jsonl_examples(std::string_view text, const std::string& source) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte-order mark
  std::vector<Example> out;
  int64_t line_no = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    const std::string where = fmt::format("{}:{}", source, line_no);
    json obj;
    try {
      obj = json::parse(line);
    } catch (const json::parse_error& e) {
      LORDS_FAIL(ErrorKind::Format, "{}: invalid JSON: {}", where, parse_error_reason(e));
    }
    Example ex = example_from_object(obj, where);
    ex.line = line_no;
    out.push_back(std::move(ex));
  }
  LORDS_CHECK(!out.empty(), ErrorKind::Format, "{}: no examples (empty file)", source);
  return out;
}

std::vector<Example> read_jsonl_examples(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LORDS_CHECK(in.good(), ErrorKind::Io, "{}: cannot open JSONL file", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_jsonl_examples(ss.str(), path);
}

DataKind data_kind_of(const std::string& path) {
  const std::string ext = std::filesystem::path(path).extension().string();
  return ext == ".jsonl" || ext == ".json" ? DataKind::Jsonl : DataKind::Text;
}

}  // namespace lords::train
