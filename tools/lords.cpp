// lords: one binary, subcommands. Each subcommand lives in its own cmd_<name>.cpp and registers itself
// through the table below. Exit codes: 0 ok, 1 user/input error (lords::Error), 2 internal error.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "lords/core/error.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"lords: Low-Rank Decomposed Scaling quantization for LLMs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "lords 0.1.0");
  std::vector<lords::tools::Command> commands = lords::tools::all_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  }
  try {
    for (auto& c : commands)
      if (c.sub->parsed()) return c.run();
  } catch (const lords::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "internal error: %s\n", e.what());
    return 2;
  }
  return 2;
}
