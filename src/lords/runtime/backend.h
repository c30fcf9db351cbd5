// Which implementation of the ops a model runs on: Ref (scalar reference kernels, the slow readable
// oracle) or Cpu (OpenMP/AVX2/BLAS). Chosen once when a model is loaded.
#pragma once

#include <string>

#include "lords/core/error.h"

namespace lords::runtime {

enum class Backend { Ref, Cpu };

inline const char* backend_name(Backend b) { return b == Backend::Ref ? "ref" : "cpu"; }

// "ref" | "cpu"; throws Error{Usage} otherwise.
inline Backend backend_from_name(const std::string& name) {
  if (name == "ref") return Backend::Ref;
  if (name == "cpu") return Backend::Cpu;
  LORDS_FAIL(ErrorKind::Usage, "unknown backend '{}' (expected ref or cpu)", name);
}

}  // namespace lords::runtime
