// lords perplexity MODEL --text FILE [--ctx 512] [--chunks N] [--protocol half|full] [--kl-base MODEL]
//                  [--device cpu|cuda]
#include <cstdio>
#include <filesystem>

#include "lords/core/error.h"
#include "lords/core/parallel.h"
#include "lords/runtime/load_model.h"
#include "lords/runtime/perplexity.h"
#include "lords/runtime/text_source.h"
#include "tools/commands.h"

namespace lords::tools {

Command add_perplexity(CLI::App& app) {
  struct Opts {
    std::string model, text, kl_base, protocol = "half", backend = "cpu", device = "cpu";
    int64_t ctx = 512, chunks = 0;
    int threads = 0;
    bool json = false, quiet = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("perplexity", "Perplexity of a model on a text (llama.cpp protocol)");
  sub->add_option("model", o->model, "HF directory, .gguf file or lords checkpoint")->required();
  sub->add_option("--text", o->text, "UTF-8 text file")->required();
  sub->add_option("--ctx", o->ctx, "tokens per chunk")->capture_default_str();
  sub->add_option("--chunks", o->chunks, "chunks to evaluate (0 = all)")->capture_default_str();
  sub->add_option("--protocol", o->protocol, "half: score the second half of each chunk (llama.cpp); full: all but the first token")
      ->capture_default_str();
  sub->add_option("--kl-base", o->kl_base, "reference model: report KL divergence and top-1 agreement against it");
  sub->add_option("--backend", o->backend, "cpu | ref (host kernels of --device cpu)")->capture_default_str();
  sub->add_option("--device", o->device, "cpu | cuda")->capture_default_str();
  sub->add_option("--threads", o->threads, "threads (0 = all cores)")->capture_default_str();
  sub->add_flag("--json", o->json, "print JSON");
  sub->add_flag("-q,--quiet", o->quiet, "no progress bar");
  return {sub, [o]() {
            LORDS_CHECK(o->protocol == "half" || o->protocol == "full", ErrorKind::Usage,
                        "--protocol must be half or full, got '{}'", o->protocol);
            LORDS_CHECK(o->backend == "cpu" || o->backend == "ref", ErrorKind::Usage,
                        "--backend must be cpu or ref, got '{}'", o->backend);
            const runtime::Device device = runtime::device_from_name(o->device);
            runtime::require_device(device);  // before reading anything: a missing GPU is reported at once
            set_inner_threads(o->threads > 0 ? o->threads : default_threads());
            const runtime::Backend backend = o->backend == "cpu" ? runtime::Backend::Cpu : runtime::Backend::Ref;
            const std::string text = runtime::read_text_file(o->text);
            const Tokenizer tok = runtime::load_model_tokenizer(o->model);
            const std::vector<int32_t> ids = tok.encode(text, AddSpecial::No);
            const std::unique_ptr<runtime::CausalLM> model = runtime::load_causal_lm(o->model, device, backend);
            std::unique_ptr<runtime::CausalLM> base;
            if (!o->kl_base.empty()) base = runtime::load_causal_lm(o->kl_base, device, backend);
            runtime::PerplexityOptions opt;
            opt.n_ctx = o->ctx;
            opt.max_chunks = o->chunks;
            opt.protocol = o->protocol == "half" ? runtime::PplProtocol::SecondHalf : runtime::PplProtocol::Full;
            if (tok.adds_bos()) opt.bos = tok.bos_id();
            opt.progress = !o->quiet && !o->json;
            const runtime::PerplexityResult r = runtime::perplexity(*model, ids, opt, base.get());
            const std::string protocol = o->protocol == "half"
                                             ? fmt::format("llama.cpp chunks of {} tokens, second half scored", o->ctx)
                                             : fmt::format("chunks of {} tokens, all but the first scored", o->ctx);
            if (o->json) {
              nlohmann::json j = r.to_json();
              j["model"] = o->model;
              j["device"] = o->device;
              j["text"] = std::filesystem::path(o->text).filename().string();
              j["text_tokens"] = ids.size();
              j["protocol"] = protocol;
              if (base) j["kl_base"] = o->kl_base;
              std::printf("%s\n", j.dump(2).c_str());
            } else {
              std::printf("model     %s\ntext      %s (%zu tokens)\nprotocol  %s\n", o->model.c_str(), o->text.c_str(),
                          ids.size(), protocol.c_str());
              std::printf("PPL = %.4f +/- %.4f over %lld tokens in %lld chunks (%.1f s)\n", r.ppl(), r.ppl() * r.nll_se,
                          static_cast<long long>(r.scored), static_cast<long long>(r.chunks), r.seconds);
              if (r.has_kl)
                std::printf("KL(base || model) = %.6f +/- %.6f, top-1 agreement %.2f%% (base %s)\n", r.kl, r.kl_se,
                            100.0 * r.top1, o->kl_base.c_str());
            }
            return 0;
          }};
}

}  // namespace lords::tools
