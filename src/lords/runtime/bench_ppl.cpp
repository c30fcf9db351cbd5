#include "lords/runtime/bench_ppl.h"

#include <unistd.h>

#include <filesystem>
#include <optional>

#include "lords/core/error.h"
#include "lords/core/parallel.h"
#include "lords/engine/quantize_model.h"
#include "lords/runtime/calibrate.h"
#include "lords/runtime/load_model.h"
#include "lords/runtime/perplexity.h"
#include "lords/runtime/text_source.h"

namespace fs = std::filesystem;

namespace lords::runtime {
namespace {

engine::QuantConfig config_for(const std::string& method, int bits, int64_t block, int steps, int threads) {
  engine::QuantConfig c;
  c.bits = bits;
  c.block = block;
  c.steps = steps;
  c.threads = threads;
  if (method == "rtn" || method == "gptq") {
    c.method = engine::Method::Rtn;
    c.objective = method == "gptq" ? engine::Objective::Gptq : engine::Objective::Weight;
    c.act_order = method == "gptq";
  } else if (method == "lords" || method == "lords-adam") {
    c.solver = method == "lords" ? quant::SolverKind::Als : quant::SolverKind::Adam;
  } else if (method == "lords-act") {
    c.objective = engine::Objective::Act;
  } else if (method == "lords-gptq") {
    c.objective = engine::Objective::Gptq;
    c.act_order = true;
  } else {
    LORDS_FAIL(ErrorKind::Usage, "unknown method '{}' (rtn, gptq, lords, lords-adam, lords-act, lords-gptq)", method);
  }
  c.validate();
  return c;
}

}  // namespace

BenchPplResult bench_ppl(const BenchPplOptions& opt) {
  const int threads = opt.threads > 0 ? opt.threads : default_threads();
  set_inner_threads(threads);
  for (const auto& m : opt.methods) config_for(m, 4, 128, opt.steps, threads);  // validate names up front
  require_device(opt.device);
  const Tokenizer tok = load_model_tokenizer(opt.model);
  const std::vector<int32_t> eval_ids = tok.encode(read_text_file(opt.eval_text), AddSpecial::No);
  PerplexityOptions popt;
  popt.n_ctx = opt.ctx;
  popt.max_chunks = opt.chunks;
  popt.progress = false;
  if (tok.adds_bos()) popt.bos = tok.bos_id();

  BenchPplResult out;
  out.eval_desc = fmt::format("{} ({} tokens)", fs::path(opt.eval_text).filename().string(), eval_ids.size());
  out.protocol = fmt::format("llama.cpp: {} chunks of {} tokens, second half scored", opt.chunks, opt.ctx);
  std::optional<engine::CalibrationStats> stats;
  {
    LlamaModel base = LlamaModel::load(opt.model, Backend::Cpu);
    const std::unique_ptr<CausalLM> base_on_device = copy_to_device(base, opt.device);  // null: cpu
    const PerplexityResult r = perplexity(base_on_device ? *base_on_device : base, eval_ids, popt);
    out.rows.push_back({16, 0, "unquantized", 16.0, r.ppl(), r.ppl() * r.nll_se, 0, 0, r.seconds});
    const bool calibrated = std::any_of(opt.methods.begin(), opt.methods.end(), [](const std::string& m) {
      return m == "gptq" || m == "lords-act" || m == "lords-gptq";
    });
    if (calibrated) {
      LORDS_CHECK(!opt.calib_text.empty(), ErrorKind::Usage, "calibrated methods need --calib FILE");
      LORDS_CHECK(fs::absolute(opt.calib_text) != fs::absolute(opt.eval_text), ErrorKind::Usage,
                  "calibration and evaluation texts must differ");
      const std::vector<int32_t> calib_ids = tok.encode(read_text_file(opt.calib_text), AddSpecial::No);
      CalibrationOptions copt;
      copt.n_ctx = opt.ctx;
      copt.max_tokens = opt.calib_tokens;
      copt.progress = opt.progress;
      stats = collect_calibration(base, calib_ids, fs::path(opt.calib_text).filename().string(), copt);
      out.calib_desc = fmt::format("{} ({} tokens)", stats->text, stats->tokens);
    }
  }
  const std::string tmp = (fs::temp_directory_path() / fmt::format("lords-bench-ppl-{}", ::getpid())).string();
  for (int bits : opt.bits)
    for (int64_t block : opt.blocks)
      for (const std::string& method : opt.methods) {
        engine::QuantizeRequest req;
        req.source = opt.model;
        req.config = config_for(method, bits, block, opt.steps, threads);
        req.output = tmp;
        req.overwrite = true;
        req.progress = false;
        if (req.config.objective != engine::Objective::Weight) req.calibration = &*stats;
        const engine::ModelQuantReport q = engine::quantize_model(req);
        const std::unique_ptr<CausalLM> model = load_causal_lm(tmp, opt.device);
        const PerplexityResult r = perplexity(*model, eval_ids, popt);
        out.rows.push_back({bits, block, method, q.bits_per_weight(), r.ppl(), r.ppl() * r.nll_se, q.total_rel_err(),
                            q.seconds, r.seconds});
        if (opt.progress)
          std::fprintf(stderr, "bench-ppl: %d bits G%lld %-10s ppl %.4f (quantize %.1fs, eval %.1fs)\n", bits,
                       static_cast<long long>(block), method.c_str(), r.ppl(), q.seconds, r.seconds);
      }
  std::error_code ec;
  fs::remove_all(tmp, ec);
  return out;
}

std::string bench_ppl_table(const BenchPplResult& r) {
  std::string s = fmt::format("eval: {}; protocol: {}; calibration: {}\n\n", r.eval_desc, r.protocol,
                              r.calib_desc.empty() ? "none" : r.calib_desc);
  s += "| bits | G | method | bits/weight | PPL | vs unquantized | vs rtn (same bits, G) | weight rel. err | quantize s |\n";
  s += "|---|---|---|---|---|---|---|---|---|\n";
  const double base = r.rows.empty() ? 0 : r.rows[0].ppl;
  for (const auto& row : r.rows) {
    double rtn = 0;
    for (const auto& o : r.rows)
      if (o.bits == row.bits && o.block == row.block && o.method == "rtn") rtn = o.ppl;
    s += fmt::format("| {} | {} | {} | {:.3f} | {:.4f} ± {:.4f} | {:+.2f}% | {} | {:.4f} | {:.1f} |\n", row.bits,
                     row.block == 0 ? std::string("-") : std::to_string(row.block), row.method, row.bits_per_weight,
                     row.ppl, row.ppl_se, 100.0 * (row.ppl / base - 1.0),
                     rtn > 0 ? fmt::format("{:.3g}x", row.ppl / rtn) : std::string("-"), row.weight_rel_err,
                     row.quantize_s);
  }
  return s;
}

nlohmann::json bench_ppl_json(const BenchPplResult& r) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& row : r.rows)
    rows.push_back({{"bits", row.bits}, {"block", row.block}, {"method", row.method},
                    {"bits_per_weight", row.bits_per_weight}, {"ppl", row.ppl}, {"ppl_se", row.ppl_se},
                    {"weight_rel_err", row.weight_rel_err}, {"quantize_s", row.quantize_s}, {"eval_s", row.eval_s}});
  return {{"eval", r.eval_desc}, {"calibration", r.calib_desc}, {"protocol", r.protocol}, {"rows", rows}};
}

}  // namespace lords::runtime
