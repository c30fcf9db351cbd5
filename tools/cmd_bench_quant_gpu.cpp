// lords bench-quant-gpu [--layers 32] [--bits 4] [--block 128] [--solver als] [--compare 1024x4096|none] [--json]
// Quantizes the 224 linears of a Llama-3-8B-shaped model (seeded random weights made on the GPU) with
// LoRDS on the GPU and prints the time per shape and in total, the errors, and a CPU-vs-GPU check.
#include <cstdio>

#include "lords/core/error.h"
#include "lords/engine/bench_quant_gpu.h"
#include "tools/commands.h"

namespace lords::tools {

Command add_bench_quant_gpu(CLI::App& app) {
  struct Opts {
    engine::BenchQuantGpuRequest req;
    std::string codebook = "nf", solver = "als", compare = "1024x4096", compare_model, compare_layer;
    bool json = false, no_fetch = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand(
      "bench-quant-gpu", "Time GPU quantization of a Llama-3-8B-shaped model (224 linears, random weights)");
  sub->add_option("--layers", o->req.layers, "decoder layers (7 linears each)")->capture_default_str();
  sub->add_option("--bits", o->req.bits, "code bits: 2, 3 or 4")->capture_default_str();
  sub->add_option("--codebook", o->codebook, "nf | int")->capture_default_str();
  sub->add_option("--block", o->req.block, "block size G (parity rank, SVD init)")->capture_default_str();
  sub->add_option("--solver", o->solver, "als | adam | none")->capture_default_str();
  sub->add_option("--steps", o->req.steps, "refinement steps (-1 = default: als 20, adam 500)")->capture_default_str();
  sub->add_option("--lr", o->req.lr, "adam learning rate")->capture_default_str();
  sub->add_option("--seed", o->req.seed, "seed of the random weights")->capture_default_str();
  sub->add_option("--compare", o->compare, "NxK of a synthesized matrix quantized on CPU and GPU, or 'none'")
      ->capture_default_str();
  sub->add_option("--compare-model", o->compare_model, "compare on a real layer of this model instead");
  sub->add_option("--compare-layer", o->compare_layer, "tensor name in --compare-model (as stored there)");
  sub->add_option("--threads", o->req.threads, "CPU threads (0 = all cores)")->capture_default_str();
  sub->add_flag("--no-fetch", o->no_fetch, "do not download codes and scales (errors only)");
  sub->add_flag("--json", o->json, "print JSON");
  return {sub, [o]() {
            engine::BenchQuantGpuRequest req = o->req;
            req.codebook = quant::codebook_kind_from_name(o->codebook);
            req.solver = quant::solver_kind_from_name(o->solver);
            req.fetch_results = !o->no_fetch;
            req.compare_shape.reset();
            if (!o->compare_model.empty()) {
              LORDS_CHECK(!o->compare_layer.empty(), ErrorKind::Usage, "--compare-model needs --compare-layer");
              req.compare_model = o->compare_model;
              req.compare_layer = o->compare_layer;
            } else if (o->compare != "none") {
              long long n = 0, k = 0;
              char x = 0;
              LORDS_CHECK(std::sscanf(o->compare.c_str(), "%lld%c%lld", &n, &x, &k) == 3 && x == 'x' && n > 0 && k > 0,
                          ErrorKind::Usage, "--compare must look like 1024x4096 or be 'none', got '{}'", o->compare);
              req.compare_shape = std::make_pair(static_cast<int64_t>(n), static_cast<int64_t>(k));
            }
            const engine::BenchQuantGpuReport rep = engine::bench_quant_gpu(req);
            std::printf("%s\n", o->json ? engine::bench_quant_gpu_json(rep).dump(2).c_str()
                                        : engine::bench_quant_gpu_table(rep).c_str());
            return 0;
          }};
}

}  // namespace lords::tools
