// lords: one binary, subcommands. Each subcommand lives in its own cmd_<name>.cpp and registers itself
// through the table below. Exit codes: 0 ok, 1 user/input error (lords::Error), 2 internal error.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "lords/core/error.h"
#include "tools/commands.h"

// libgomp reads OMP_WAIT_POLICY once, at start-up. Its default (spin) makes every parallel region's
// threads burn their core while waiting, which on a small or shared machine starves OpenBLAS and the
// other region: measured 1.5x slower generation on 2 cores. So unless the user chose a policy, re-exec
// once with the passive one.
void ensure_passive_openmp_wait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  ::setenv("OMP_WAIT_POLICY", "passive", 1);
  ::execv("/proc/self/exe", argv);  // returns only on failure: then run with the default policy
}

int main(int argc, char** argv) {
  ensure_passive_openmp_wait(argv);
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
