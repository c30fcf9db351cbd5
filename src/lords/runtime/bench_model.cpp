#include "lords/runtime/bench_model.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "lords/core/error.h"
#include "lords/core/parallel.h"
#include "lords/runtime/load_model.h"

namespace lords::runtime {
namespace {

std::pair<double, double> mean_sd(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m += x;
  m /= static_cast<double>(v.size());
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return {m, v.size() > 1 ? std::sqrt(s / static_cast<double>(v.size() - 1)) : 0.0};
}

std::string describe_weights(const std::string& path, const CausalLM& m) {
  std::ifstream in(path + "/config.json");
  const nlohmann::json cfg = nlohmann::json::parse(in, nullptr, false);
  const bool checkpoint = !cfg.is_discarded() && cfg.contains("quantization_config");
  // Dense weights run as fp32 on the cpu and as fp16 on cuda.
  if (!checkpoint) return m.device() == Device::Cuda ? "fp16 (dense)" : "fp32 (dense)";
  const auto& q = cfg["quantization_config"];
  return fmt::format("{} {}{} G{}", q.value("method", "?"), q.value("codebook", "?"), q.value("bits", 0),
                     q.value("block", 0));
}

}  // namespace

std::vector<BenchModelRow> bench_models(const BenchModelOptions& opt) {
  LORDS_CHECK(opt.reps >= 1 && opt.pp >= 1 && opt.tg >= 1, ErrorKind::Usage, "-p, -n and -r must be >= 1");
  set_inner_threads(opt.threads > 0 ? opt.threads : default_threads());
  std::vector<BenchModelRow> rows;
  for (const std::string& path : opt.models) {
    const std::unique_ptr<CausalLM> lm = load_causal_lm(path, opt.device);
    CausalLM& model = *lm;
    LORDS_CHECK(opt.pp + opt.tg <= model.max_context(), ErrorKind::Usage,
                "-p {} + -n {} exceeds the model's maximum context of {}", opt.pp, opt.tg, model.max_context());
    const std::string weights = describe_weights(path, model);
    std::vector<int32_t> prompt(static_cast<size_t>(opt.pp));
    for (int64_t i = 0; i < opt.pp; ++i) prompt[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919 + 11) % model.vocab());
    std::vector<float> logits(static_cast<size_t>(model.vocab()));
    const std::unique_ptr<KvCacheBase> cache_ptr = model.new_cache(opt.pp + opt.tg);
    KvCacheBase& cache = *cache_ptr;
    std::vector<double> pp_tps, tg_tps;
    for (int rep = -1; rep < opt.reps; ++rep) {  // rep -1 warms up caches and buffers
      cache.reset();
      auto t0 = std::chrono::steady_clock::now();
      model.forward(prompt.data(), opt.pp, cache, logits.data(), LogitsMode::Last);
      const double pp_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      // tg: the llama-bench convention, generation from a short context (one token primes the cache).
      cache.reset();
      int32_t tok = prompt[0];
      model.forward(&tok, 1, cache, logits.data(), LogitsMode::Last);
      t0 = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < opt.tg; ++i) {
        tok = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        model.forward(&tok, 1, cache, logits.data(), LogitsMode::Last);
      }
      const double tg_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (rep >= 0) {
        pp_tps.push_back(static_cast<double>(opt.pp) / pp_s);
        tg_tps.push_back(static_cast<double>(opt.tg) / tg_s);
      }
    }
    const auto [ppm, pps] = mean_sd(pp_tps);
    const auto [tgm, tgs] = mean_sd(tg_tps);
    const std::string name = std::filesystem::path(path).filename().string();
    const std::string device = device_name(opt.device);
    rows.push_back({name, fmt::format("pp{}", opt.pp), weights, device, ppm, pps});
    rows.push_back({name, fmt::format("tg{}", opt.tg), weights, device, tgm, tgs});
  }
  return rows;
}

std::string bench_models_table(const std::vector<BenchModelRow>& rows) {
  std::string s = "| model | weights | device | test | t/s | vs first model |\n|---|---|---|---|---|---|\n";
  for (const auto& r : rows) {
    double base = 0;
    for (const auto& o : rows)
      if (o.test == r.test) {
        base = o.mean_tps;
        break;
      }
    s += fmt::format("| {} | {} | {} | {} | {:.2f} ± {:.2f} | {:.2f}x |\n", r.model, r.weights, r.device, r.test,
                     r.mean_tps, r.sd_tps, base > 0 ? r.mean_tps / base : 0.0);
  }
  return s;
}

nlohmann::json bench_models_json(const std::vector<BenchModelRow>& rows) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& r : rows)
    j.push_back({{"model", r.model}, {"weights", r.weights}, {"device", r.device}, {"test", r.test},
                 {"tps_mean", r.mean_tps}, {"tps_sd", r.sd_tps}});
  return j;
}

}  // namespace lords::runtime
