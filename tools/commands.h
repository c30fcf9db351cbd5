// The subcommand table: each cmd_<name>.cpp defines add_<name>(app) returning its Command.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace lords::tools {

struct Command {
  CLI::App* sub;
  std::function<int()> run;  // called after parsing when sub was chosen
};

Command add_quantize(CLI::App& app);
Command add_inspect(CLI::App& app);
Command add_dequantize(CLI::App& app);
Command add_bench_solvers(CLI::App& app);
Command add_convert(CLI::App& app);
Command add_perplexity(CLI::App& app);
Command add_generate(CLI::App& app);
Command add_bench(CLI::App& app);
Command add_bench_ppl(CLI::App& app);
Command add_bench_quant_gpu(CLI::App& app);
Command add_bench_kernels(CLI::App& app);
Command add_finetune(CLI::App& app);

inline std::vector<Command> all_commands(CLI::App& app) {
  return {add_quantize(app), add_inspect(app), add_dequantize(app), add_bench_solvers(app), add_convert(app),
          add_perplexity(app), add_generate(app),   add_bench(app), add_bench_ppl(app), add_bench_kernels(app),
          add_bench_quant_gpu(app), add_finetune(app)};
}

}  // namespace lords::tools
