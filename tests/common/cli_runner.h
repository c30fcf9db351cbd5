// Runs the real `lords` binary (LORDS_BINARY) with arguments, capturing stdout and stderr together.
#pragma once

#include <string>

namespace lords::test {

struct CliResult {
  int code;         // exit status (-1 if it did not exit normally)
  std::string out;  // stdout and stderr together
};

CliResult run_cli(const std::string& binary, const std::string& args);

}  // namespace lords::test
