// lords quantize MODEL [-o OUT] --method lords|rtn --bits 4 --codebook nf|int --block 128 [--rank R]
//                      [--solver als|adam|none] [--steps N] [--threads T] [--device cpu|cuda] [--json]
// Without -o only the error table is printed (nothing is written).
#include <cstdio>
#include <optional>

#include <filesystem>

#include "lords/core/error.h"
#include "lords/core/parallel.h"
#include "lords/engine/quantize_model.h"
#include "lords/runtime/calibrate.h"
#include "lords/runtime/text_source.h"
#include "tools/commands.h"

namespace lords::tools {
namespace {

engine::CalibrationStats calibrate(const std::string& model_path, const std::string& text_path, int64_t tokens,
                                   int64_t ctx, bool progress) {
  set_inner_threads(default_threads());
  const Tokenizer tok = runtime::load_model_tokenizer(model_path);
  const std::vector<int32_t> ids = tok.encode(runtime::read_text_file(text_path), AddSpecial::No);
  runtime::LlamaModel model = runtime::LlamaModel::load(model_path, runtime::Backend::Cpu);
  runtime::CalibrationOptions opt;
  opt.n_ctx = ctx;
  opt.max_tokens = tokens;
  opt.progress = progress;
  return runtime::collect_calibration(model, ids, std::filesystem::path(text_path).filename().string(), opt);
}

}  // namespace

Command add_quantize(CLI::App& app) {
  struct Opts {
    std::string model, output, method = "lords", codebook = "nf", solver = "als", scale_dtype = "f16";
    int bits = 4, steps = -1, threads = 0, jobs = 0;
    int64_t block = 128, rank = 0;
    float lr = 1e-3f;
    std::string layers = engine::kDefaultLayers;
    bool json = false, force = false, quiet = false, act_order = false;
    std::string objective = "weight", calib, device = "cpu";
    int64_t calib_tokens = 16384, calib_ctx = 512;
    double damp = 0.01;
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
  sub->add_option("--objective", o->objective, "weight | act (activation-weighted, lords) | gptq (error feedback)")
      ->capture_default_str();
  sub->add_option("--calib", o->calib, "calibration text (UTF-8) for --objective act|gptq");
  sub->add_option("--calib-tokens", o->calib_tokens, "calibration tokens")->capture_default_str();
  sub->add_option("--calib-ctx", o->calib_ctx, "tokens per calibration chunk")->capture_default_str();
  sub->add_flag("--act-order", o->act_order, "gptq: quantize columns by decreasing activation energy");
  sub->add_option("--damp", o->damp, "gptq: dampening fraction of mean diag(H)")->capture_default_str();
  sub->add_option("--threads", o->threads, "threads in all (0 = all cores)")->capture_default_str();
  sub->add_option("--jobs", o->jobs, "layers quantized at once (0 = auto: all threads on cpu, 2 on cuda)")
      ->capture_default_str();
  sub->add_option("--device", o->device,
                  "cpu | cuda. cuda: objective weight only; device memory is bounded: each job holds ~14 bytes "
                  "per weight of the largest linear (0.8 GB for 14336x4096)")
      ->capture_default_str();
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
            c.objective = engine::objective_from_name(o->objective);
            c.act_order = o->act_order;
            c.damp = o->damp;
            req.device = engine::quant_device_from_name(o->device);
            if (req.device == engine::QuantDevice::Cuda) {
              c.validate();
              engine::require_gpu_quantize(c, "quantize --device cuda");  // before any calibration work
            }
            std::optional<engine::CalibrationStats> stats;
            if (c.objective != engine::Objective::Weight) {
              LORDS_CHECK(!o->calib.empty(), ErrorKind::Usage, "--objective {} needs --calib FILE", o->objective);
              c.validate();
              stats = calibrate(o->model, o->calib, o->calib_tokens, o->calib_ctx, !o->quiet);
              req.calibration = &*stats;
            }
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
