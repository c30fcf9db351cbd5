// LORDS_ASSERT for the host launchers in .cu files. core/error.h pulls in fmt, which nvcc cannot compile
// in C++20 mode (fmt 9's constexpr bigint), so this header declares the same always-on assert_fail
// (defined in core/error.cpp) without it. Include one of the two, never both.
#pragma once

namespace lords {
[[noreturn]] void assert_fail(const char* expr, const char* file, int line);
}  // namespace lords

#ifndef LORDS_ASSERT
#define LORDS_ASSERT(cond)                                        \
  do {                                                            \
    if (!(cond)) ::lords::assert_fail(#cond, __FILE__, __LINE__); \
  } while (0)
#endif
