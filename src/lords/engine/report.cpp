// ModelQuantReport: the per-layer error table printed by `lords quantize` and its JSON form.
#include <cmath>

#include <fmt/format.h>

#include "lords/engine/quantize_model.h"

namespace lords::engine {

nlohmann::json ModelQuantReport::to_json() const {
  nlohmann::json j;
  j["source"] = source;
  j["settings"] = config.to_json();
  j["device"] = quant_device_name(device);
  j["seconds"] = seconds;
  j["weights"] = weights;
  j["scale_floats"] = scale_floats;
  j["bits_per_weight"] = bits_per_weight();
  j["total_rel_err"] = total_rel_err();
  if (!calibration.empty()) {
    j["calibration"] = calibration;
    j["total_output_rel_err"] = total_output_rel_err();
  }
  if (config.method == Method::Lords) j["total_init_rel_err"] = total_init_rel_err();
  nlohmann::json rows = nlohmann::json::array();
  for (const LinearStats& l : layers) {
    nlohmann::json r;
    r["name"] = l.name;
    r["shape"] = {l.N, l.K};
    r["rel_err"] = l.w_sq > 0 ? std::sqrt(l.err_sq / l.w_sq) : 0.0;
    r["seconds"] = l.seconds;
    if (config.method == Method::Lords) {
      r["rank"] = l.rank;
      r["svd_rel_err"] = l.svd_rel_err;
      r["init_rel_err"] = l.w_sq > 0 ? std::sqrt(l.init_err_sq / l.w_sq) : 0.0;
      r["best_step"] = l.best_step;
    } else {
      r["block"] = l.block;
    }
    rows.push_back(r);
  }
  j["layers"] = rows;
  return j;
}

std::string ModelQuantReport::table() const {
  const bool lords = config.method == Method::Lords;
  std::string s;
  if (lords) {
    s += fmt::format("{:<28} {:>12} {:>5} {:>10} {:>10} {:>10} {:>5} {:>8}\n", "layer", "shape", "rank",
                     "svd_err", "init_err", "rel_err", "best", "time_s");
  } else {
    s += fmt::format("{:<28} {:>12} {:>5} {:>10} {:>8}\n", "layer", "shape", "block", "rel_err", "time_s");
  }
  for (const LinearStats& l : layers) {
    const double rel = l.w_sq > 0 ? std::sqrt(l.err_sq / l.w_sq) : 0.0;
    const std::string shape = fmt::format("{}x{}", l.N, l.K);
    if (lords) {
      const double init = l.w_sq > 0 ? std::sqrt(l.init_err_sq / l.w_sq) : 0.0;
      s += fmt::format("{:<28} {:>12} {:>5} {:>10.5f} {:>10.5f} {:>10.5f} {:>5} {:>8.2f}\n", l.name, shape,
                       l.rank, l.svd_rel_err, init, rel, l.best_step, l.seconds);
    } else {
      s += fmt::format("{:<28} {:>12} {:>5} {:>10.5f} {:>8.2f}\n", l.name, shape, l.block, rel, l.seconds);
    }
  }
  s += fmt::format("total: {} layers, {} weights, rel_err {:.5f}", layers.size(), weights, total_rel_err());
  if (lords) s += fmt::format(" (svd init {:.5f})", total_init_rel_err());
  if (!calibration.empty())
    s += fmt::format(", output rel_err {:.5f} (calibration: {})", total_output_rel_err(), calibration);
  s += fmt::format(", {:.3f} bits/weight ({} scales), {:.1f} s\n", bits_per_weight(),
                   dtype_name(config.scale_dtype), seconds);
  return s;
}

}  // namespace lords::engine
