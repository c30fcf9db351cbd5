// lords quantize MODEL [-o OUT] --method lords|rtn --bits 4 --codebook nf|int --block 128 [--rank R]
//                      [--solver als|adam|none] [--steps N] [--threads T] [--json]
// Without -o only the error table is printed (nothing is written).
#include <cstdio>
#include <optional>

#include "lords/core/error.h"
#include "lords/engine/quantize_model.h"
#include "tools/commands.h"

namespace lords::tools {

Command add_quantize(CLI::App& app) {
  struct Opts {
    std::string model, output, method = "lords", codebook = "nf", solver = "als", scale_dtype = "f16";
    int bits = 4, steps = -1, threads = 0, jobs = 0;
    int64_t block = 128, rank = 0;
    float lr = 1e-3f;
    std::string layers = engine::kDefaultLayers;
    bool json = false, force = false, quiet = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("quantize", "Quantize a model (HF directory or GGUF file) with LoRDS or block-wise RTN");
  sub->add_option("model", o->model, "HF model directory or .gguf file")->required();
  sub->add_option("-o,--output", o->output, "output checkpoint directory (omit to only measure errors)");
  sub->add_option("--method", o->method, "lords | rtn")->capture_default_str();
  sub->add_option("--bits", o->bits, "code bits: 2, 3 or 4")->capture_default_str();
  sub->add_option("--codebook", o->codebook, "nf | int")->capture_default_str();
  sub->add_option("--block", o->block, "block size G (RTN blocks; LoRDS init and parity budget)")->capture_default_str();
  sub->add_option("--rank", o->rank, "LoRDS rank (0 = parity rank floor(NK/(G(N+K))))")->capture_default_str();
  sub->add_option("--solver", o->solver, "LoRDS refinement: als | adam | none")->capture_default_str();
  sub->add_option("--steps", o->steps, "refinement steps (-1 = default: als 20, adam 500)")->capture_default_str();
  sub->add_option("--lr", o->lr, "adam learning rate")->capture_default_str();
  sub->add_option("--scale-dtype", o->scale_dtype, "storage of B, A / block scales: f16 | bf16 | f32")->capture_default_str();
  sub->add_option("--layers", o->layers, "regex over internal layer names (blk.N.attn_q.weight, ...)");
  sub->add_option("--threads", o->threads, "threads in all (0 = all cores)")->capture_default_str();
  sub->add_option("--jobs", o->jobs, "layers quantized at once (0 = auto)")->capture_default_str();
  sub->add_flag("--json", o->json, "print the report as JSON on stdout");
  sub->add_flag("--force", o->force, "replace an existing output directory");
  sub->add_flag("-q,--quiet", o->quiet, "no progress bar");
  return {sub, [o]() {
            engine::QuantizeRequest req;
            req.source = o->model;
            if (!o->output.empty()) req.output = o->output;
            req.overwrite = o->force;
            req.progress = !o->quiet;
            engine::QuantConfig& c = req.config;
            c.method = engine::method_from_name(o->method);
            c.bits = o->bits;
            c.codebook = quant::codebook_kind_from_name(o->codebook);
            c.block = o->block;
            c.rank = o->rank;
            c.solver = quant::solver_kind_from_name(o->solver);
            c.steps = o->steps;
            c.lr = o->lr;
            LORDS_CHECK(o->scale_dtype == "f16" || o->scale_dtype == "bf16" || o->scale_dtype == "f32",
                        ErrorKind::Usage, "--scale-dtype must be f16, bf16 or f32, got '{}'", o->scale_dtype);
            c.scale_dtype = o->scale_dtype == "f16" ? DType::F16 : o->scale_dtype == "bf16" ? DType::BF16 : DType::F32;
            c.layers = o->layers;
            c.threads = o->threads;
            c.jobs = o->jobs;
            const engine::ModelQuantReport report = engine::quantize_model(req);
            if (o->json) {
              std::printf("%s\n", report.to_json().dump(2).c_str());
            } else {
              std::printf("%s", report.table().c_str());
              if (req.output) std::printf("wrote %s\n", req.output->c_str());
            }
            return 0;
          }};
}

}  // namespace lords::tools
