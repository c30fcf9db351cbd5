// lords bench-ppl MODEL --text EVAL --calib CALIB [--bits 4,3,2] [--blocks 128,64] [--methods ...]
//                 [--device cpu|cuda]
#include <cstdio>

#include "lords/runtime/bench_ppl.h"
#include "lords/runtime/load_model.h"
#include "tools/commands.h"

namespace lords::tools {

Command add_bench_ppl(CLI::App& app) {
  auto o = std::make_shared<runtime::BenchPplOptions>();
  auto json = std::make_shared<bool>(false);
  auto device = std::make_shared<std::string>("cpu");
  CLI::App* sub = app.add_subcommand("bench-ppl", "Perplexity of every quantizer at every bit width, in one run");
  sub->add_option("model", o->model, "HF directory or .gguf file (unquantized reference)")->required();
  sub->add_option("--text", o->eval_text, "evaluation text")->required();
  sub->add_option("--calib", o->calib_text, "calibration text (disjoint from --text)");
  sub->add_option("--bits", o->bits, "bit widths")->delimiter(',')->capture_default_str();
  sub->add_option("--blocks", o->blocks, "block sizes G (parameter budget)")->delimiter(',')->capture_default_str();
  sub->add_option("--methods", o->methods, "rtn, gptq, lords, lords-adam, lords-act, lords-gptq")->delimiter(',')
      ->capture_default_str();
  sub->add_option("--ctx", o->ctx, "tokens per chunk")->capture_default_str();
  sub->add_option("--chunks", o->chunks, "evaluation chunks")->capture_default_str();
  sub->add_option("--calib-tokens", o->calib_tokens, "calibration tokens")->capture_default_str();
  sub->add_option("--steps", o->steps, "solver steps (-1 = defaults)")->capture_default_str();
  sub->add_option("--threads", o->threads, "threads (0 = all cores)")->capture_default_str();
  sub->add_option("--device", *device, "where perplexity runs: cpu | cuda (calibration runs on the cpu)")
      ->capture_default_str();
  sub->add_flag("--json", *json, "print JSON");
  return {sub, [o, json, device]() {
            o->device = runtime::device_from_name(*device);
            runtime::require_device(o->device);
            const runtime::BenchPplResult r = runtime::bench_ppl(*o);
            std::printf("%s\n", *json ? runtime::bench_ppl_json(r).dump(2).c_str() : runtime::bench_ppl_table(r).c_str());
            return 0;
          }};
}

}  // namespace lords::tools
