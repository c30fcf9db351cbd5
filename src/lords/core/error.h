// Error handling: lords::Error for anything a user or a file can cause (thrown by LORDS_CHECK),
// LORDS_ASSERT for internal invariants (always on, aborts with file:line).
// Messages name the object and give expected vs got: "[load] blk.3.ffn_up.weight: shape [..], expected [..]".
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>
#include <string>

namespace lords {

enum class ErrorKind { Io, Format, BadShape, Unsupported, Usage, Cuda, Internal };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

[[noreturn]] void assert_fail(const char* expr, const char* file, int line);

}  // namespace lords

// LORDS_CHECK(cond, ErrorKind::Format, "[gguf] {}: bad magic", path)
#define LORDS_CHECK(cond, kind, ...)                                    \
  do {                                                                  \
    if (!(cond)) throw ::lords::Error((kind), fmt::format(__VA_ARGS__)); \
  } while (0)

#define LORDS_FAIL(kind, ...) throw ::lords::Error((kind), fmt::format(__VA_ARGS__))

#define LORDS_ASSERT(cond)                                      \
  do {                                                          \
    if (!(cond)) ::lords::assert_fail(#cond, __FILE__, __LINE__); \
  } while (0)
