// lords bench MODEL [MODEL ...] [-p 512] [-n 128] [-r 3] [--device cpu|cuda]: pp/tg tokens/s, mean ± sd,
// ratios to the first model.
#include <cstdio>

#include "lords/runtime/bench_model.h"
#include "lords/runtime/load_model.h"
#include "tools/commands.h"

namespace lords::tools {

Command add_bench(CLI::App& app) {
  auto o = std::make_shared<runtime::BenchModelOptions>();
  auto json = std::make_shared<bool>(false);
  auto device = std::make_shared<std::string>("cpu");
  CLI::App* sub = app.add_subcommand("bench", "Prompt-processing and generation speed of one or more models");
  sub->add_option("models", o->models, "HF directories, .gguf files or lords checkpoints")->required();
  sub->add_option("-p,--prompt-tokens", o->pp, "prompt tokens (pp test)")->capture_default_str();
  sub->add_option("-n,--gen-tokens", o->tg, "generated tokens (tg test)")->capture_default_str();
  sub->add_option("-r,--reps", o->reps, "repetitions")->capture_default_str();
  sub->add_option("--threads", o->threads, "threads (0 = all cores)")->capture_default_str();
  sub->add_option("--device", *device, "cpu | cuda")->capture_default_str();
  sub->add_flag("--json", *json, "print JSON");
  return {sub, [o, json, device]() {
            o->device = runtime::device_from_name(*device);
            runtime::require_device(o->device);
            const auto rows = runtime::bench_models(*o);
            std::printf("%s\n", *json ? runtime::bench_models_json(rows).dump(2).c_str()
                                      : runtime::bench_models_table(rows).c_str());
            return 0;
          }};
}

}  // namespace lords::tools
