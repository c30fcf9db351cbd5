// Helpers shared by the io tests: little-endian byte encoding and a check that a call throws
// lords::Error with a one-line message containing given phrases (the file name, the problem).
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "lords/core/error.h"

namespace lords::test {

template <typename T>
std::string le_bytes(T v) {
  std::string s(sizeof(T), '\0');
  std::memcpy(s.data(), &v, sizeof(T));
  return s;
}

// Runs fn, which must throw lords::Error whose message holds every phrase; returns the error's kind.
inline ErrorKind expect_error(const std::function<void()>& fn, const std::vector<std::string>& phrases) {
  try {
    fn();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message spans lines: " << msg;
    for (const std::string& p : phrases) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
    return e.kind();
  }
  ADD_FAILURE() << "expected lords::Error mentioning '" << (phrases.empty() ? "" : phrases.back()) << "'";
  return ErrorKind::Internal;
}

}  // namespace lords::test
