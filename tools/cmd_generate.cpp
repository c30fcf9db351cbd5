// lords generate MODEL -p "..." [-n 64] [--temp 0] [--top-p 1] [--seed 0] [--device cpu|cuda]
#include <cstdio>

#include "lords/core/error.h"
#include "lords/core/parallel.h"
#include "lords/runtime/generate.h"
#include "lords/runtime/load_model.h"
#include "lords/runtime/text_source.h"
#include "tools/commands.h"

namespace lords::tools {

Command add_generate(CLI::App& app) {
  struct Opts {
    std::string model, prompt, device = "cpu";
    int64_t n = 64;
    float temp = 0.0f, top_p = 1.0f;
    uint64_t seed = 0;
    int threads = 0;
    bool no_stop = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("generate", "Generate text from a prompt");
  sub->add_option("model", o->model, "HF directory, .gguf file or lords checkpoint")->required();
  sub->add_option("-p,--prompt", o->prompt, "prompt text")->required();
  sub->add_option("-n,--tokens", o->n, "new tokens")->capture_default_str();
  sub->add_option("--temp", o->temp, "temperature (0 = greedy)")->capture_default_str();
  sub->add_option("--top-p", o->top_p, "nucleus sampling mass")->capture_default_str();
  sub->add_option("--seed", o->seed, "sampling seed")->capture_default_str();
  sub->add_option("--threads", o->threads, "threads (0 = all cores)")->capture_default_str();
  sub->add_option("--device", o->device, "cpu | cuda")->capture_default_str();
  sub->add_flag("--ignore-eos", o->no_stop, "do not stop at the end-of-sequence token");
  return {sub, [o]() {
            const runtime::Device device = runtime::device_from_name(o->device);
            runtime::require_device(device);
            set_inner_threads(o->threads > 0 ? o->threads : default_threads());
            const Tokenizer tok = runtime::load_model_tokenizer(o->model);
            const std::vector<int32_t> prompt = tok.encode(o->prompt, AddSpecial::Yes);
            const std::unique_ptr<runtime::CausalLM> model = runtime::load_causal_lm(o->model, device);
            runtime::GenerateOptions opt;
            opt.max_new_tokens = o->n;
            opt.sampling = {o->temp, o->top_p, o->seed};
            if (!o->no_stop) opt.stop_token = tok.eos_id();
            std::printf("%s", o->prompt.c_str());
            std::fflush(stdout);
            const runtime::GenerateResult r = runtime::generate(*model, prompt, opt, [&](int32_t t) {
              if (!(opt.stop_token && t == *opt.stop_token)) std::printf("%s", tok.token_piece(t).c_str());
              std::fflush(stdout);
            });
            std::fprintf(stderr, "\n[prompt %zu tokens %.1f t/s, generated %zu tokens %.1f t/s]\n", prompt.size(),
                         static_cast<double>(prompt.size()) / r.prompt_seconds, r.tokens.size(),
                         r.gen_seconds > 0 ? static_cast<double>(r.tokens.size() > 0 ? r.tokens.size() - 1 : 0) / r.gen_seconds : 0.0);
            std::printf("\n");
            return 0;
          }};
}

}  // namespace lords::tools
