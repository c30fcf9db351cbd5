#include "lords/core/error.h"

#include <cstdio>
#include <cstdlib>

namespace lords {

void assert_fail(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "lords: internal assertion failed: %s at %s:%d\n", expr, file, line);
  std::abort();
}

}  // namespace lords
