#include "lords/engine/inspect.h"

namespace lords::engine {

nlohmann::json describe_checkpoint(const Checkpoint& ck) {
  nlohmann::json j;
  j["path"] = ck.dir();
  j["settings"] = ck.settings();
  j["codebook"] = {{"name", ck.codebook().name()}, {"levels", ck.codebook().levels}};
  j["model_type"] = ck.config().value("model_type", "");
  uint64_t q_bytes = 0, plain_bytes = 0;
  int64_t weights = 0;
  nlohmann::json layers = nlohmann::json::array();
  for (const std::string& name : ck.quantized_names()) {
    const nlohmann::json& e = ck.layer_table().at(name);
    uint64_t bytes = 0;
    for (const char* suffix : {".qcodes", ".qscales", ".lords_B", ".lords_A"})
      if (ck.index().contains(name + suffix)) bytes += ck.index().at(name + suffix).nbytes;
    const int64_t n = e["shape"][0].get<int64_t>() * e["shape"][1].get<int64_t>();
    weights += n;
    q_bytes += bytes;
    nlohmann::json row = e;
    row["name"] = name;
    row["bytes"] = bytes;
    row["bits_per_weight"] = 8.0 * static_cast<double>(bytes) / static_cast<double>(n);
    layers.push_back(row);
  }
  for (const std::string& name : ck.plain_names()) plain_bytes += ck.index().at(name).nbytes;
  j["layers"] = layers;
  j["quantized_weights"] = weights;
  j["quantized_bytes"] = q_bytes;
  j["plain_tensors"] = ck.plain_names().size();
  j["plain_bytes"] = plain_bytes;
  j["bits_per_weight"] = weights > 0 ? 8.0 * static_cast<double>(q_bytes) / static_cast<double>(weights) : 0.0;
  return j;
}

std::string describe_text(const nlohmann::json& j) {
  std::string s = fmt::format("checkpoint   {}\nmodel_type   {}\nsettings     {}\ncodebook     {} {}\n",
                              j["path"].get<std::string>(), j["model_type"].get<std::string>(),
                              j["settings"].dump(), j["codebook"]["name"].get<std::string>(),
                              j["codebook"]["levels"].dump());
  s += fmt::format("{:<44} {:>12} {:>8} {:>12} {:>8}\n", "layer", "shape", "rank/G", "bytes", "bits/w");
  for (const auto& row : j["layers"]) {
    const auto rg = row.contains("rank") ? row["rank"].get<int64_t>() : row["block"].get<int64_t>();
    s += fmt::format("{:<44} {:>12} {:>8} {:>12} {:>8.3f}\n", row["name"].get<std::string>(),
                     fmt::format("{}x{}", row["shape"][0].get<int64_t>(), row["shape"][1].get<int64_t>()), rg,
                     row["bytes"].get<uint64_t>(), row["bits_per_weight"].get<double>());
  }
  s += fmt::format("total: {} quantized layers, {} weights in {} bytes ({:.3f} bits/weight incl. scales); "
                   "{} plain tensors, {} bytes",
                   j["layers"].size(), j["quantized_weights"].get<int64_t>(), j["quantized_bytes"].get<uint64_t>(),
                   j["bits_per_weight"].get<double>(), j["plain_tensors"].get<size_t>(),
                   j["plain_bytes"].get<uint64_t>());
  return s;
}

}  // namespace lords::engine
