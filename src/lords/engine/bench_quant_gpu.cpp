// bench-quant-gpu: the shapes, the report's table and JSON (the run itself is gpu/bench_quant_gpu_run.cpp).
#include "lords/engine/bench_quant_gpu.h"

#include <fmt/format.h>

#include "lords/core/error.h"
#include "lords/engine/gpu_quant.h"

namespace lords::engine {

std::vector<LinearShape> llama3_8b_layer_linears() {
  // hidden 4096, 32 heads / 8 kv heads of 128, intermediate 14336 (Meta-Llama-3-8B config.json).
  return {{"q_proj", 4096, 4096},     {"k_proj", 1024, 4096},  {"v_proj", 1024, 4096},
          {"o_proj", 4096, 4096},     {"gate_proj", 14336, 4096}, {"up_proj", 14336, 4096},
          {"down_proj", 4096, 14336}};
}

namespace {
constexpr double kTargetSeconds = 120.0;  // the requirement for 224 linears on one H100
}

std::string bench_quant_gpu_table(const BenchQuantGpuReport& r) {
  const BenchQuantGpuRequest& q = r.request;
  std::string s = fmt::format("device: {}; {}{} G={} {} {} steps, scales f16, {} layers\n", r.device,
                              q.codebook == quant::CodebookKind::NF ? "nf" : "int", q.bits, q.block,
                              quant::solver_kind_name(q.solver), r.steps, q.layers);
  s += "| linear | shape | rank | count | time_s | s/linear | rel_err | init_rel_err |\n"
       "|---|---|---|---|---|---|---|---|\n";
  for (const BenchQuantGpuShape& sh : r.shapes) {
    const double n = sh.count > 0 ? sh.count : 1;
    s += fmt::format("| {} | {}x{} | {} | {} | {:.2f} | {:.3f} | {:.5f} | {:.5f} |\n", sh.shape.name, sh.shape.N,
                     sh.shape.K, sh.rank, sh.count, sh.seconds, sh.seconds / n, sh.sum_rel_err / n,
                     sh.sum_init_rel_err / n);
  }
  s += fmt::format("total: {} linears quantized in {:.2f} s (+{:.2f} s weight generation, {:.2f} s wall); "
                   "mean rel_err {:.5f}, aggregate {:.5f}; device memory {:.2f} GB\n",
                   r.linears, r.quant_seconds, r.gen_seconds, r.wall_seconds, r.mean_rel_err, r.total_rel_err,
                   static_cast<double>(r.device_bytes) / 1e9);
  if (q.layers == 32) {
    s += fmt::format("requirement: 224 linears in < {:.0f} s: {}\n", kTargetSeconds,
                     r.quant_seconds < kTargetSeconds ? "PASS" : "FAIL");
  }
  if (r.compare) {
    const BenchQuantGpuCompare& c = *r.compare;
    s += fmt::format("cpu vs gpu on {} ({}x{}, rank {}): rel_err cpu {:.6f}, gpu {:.6f} ({:+.3f}%), time cpu {:.2f} s, "
                     "gpu {:.3f} s\n",
                     c.what, c.N, c.K, c.rank, c.cpu_rel_err, c.gpu_rel_err,
                     c.cpu_rel_err > 0 ? 100.0 * (c.gpu_rel_err / c.cpu_rel_err - 1.0) : 0.0, c.cpu_seconds,
                     c.gpu_seconds);
  }
  return s;
}

nlohmann::json bench_quant_gpu_json(const BenchQuantGpuReport& r) {
  nlohmann::json j;
  j["device"] = r.device;
  j["layers"] = r.request.layers;
  j["bits"] = r.request.bits;
  j["codebook"] = r.request.codebook == quant::CodebookKind::NF ? "nf" : "int";
  j["block"] = r.request.block;
  j["solver"] = quant::solver_kind_name(r.request.solver);
  j["steps"] = r.steps;
  j["linears"] = r.linears;
  j["quant_seconds"] = r.quant_seconds;
  j["gen_seconds"] = r.gen_seconds;
  j["wall_seconds"] = r.wall_seconds;
  j["mean_rel_err"] = r.mean_rel_err;
  j["total_rel_err"] = r.total_rel_err;
  j["device_bytes"] = r.device_bytes;
  nlohmann::json shapes = nlohmann::json::array();
  for (const BenchQuantGpuShape& sh : r.shapes) {
    shapes.push_back({{"name", sh.shape.name}, {"shape", {sh.shape.N, sh.shape.K}}, {"rank", sh.rank},
                      {"count", sh.count}, {"seconds", sh.seconds},
                      {"mean_rel_err", sh.count > 0 ? sh.sum_rel_err / sh.count : 0.0},
                      {"mean_init_rel_err", sh.count > 0 ? sh.sum_init_rel_err / sh.count : 0.0}});
  }
  j["shapes"] = shapes;
  if (r.compare) {
    const BenchQuantGpuCompare& c = *r.compare;
    j["compare"] = {{"what", c.what},           {"shape", {c.N, c.K}},        {"rank", c.rank},
                    {"cpu_rel_err", c.cpu_rel_err}, {"gpu_rel_err", c.gpu_rel_err}, {"cpu_seconds", c.cpu_seconds},
                    {"gpu_seconds", c.gpu_seconds}};
  }
  return j;
}

#if !defined(LORDS_HAVE_CUDA)
BenchQuantGpuReport bench_quant_gpu(const BenchQuantGpuRequest&) {
  require_gpu_device("bench-quant-gpu");  // throws: this build has no CUDA
  return {};
}
#endif

}  // namespace lords::engine
