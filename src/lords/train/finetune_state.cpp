// Run state of lords finetune (finetune_state.h).
#include "lords/train/finetune_state.h"

#include <filesystem>
#include <map>

#include "lords/core/atomic_output.h"
#include "lords/core/error.h"
#include "lords/io/safetensors.h"

namespace lords::train {
namespace {

constexpr const char* kStateFile = "state.safetensors";

nlohmann::json eval_json(const EvalResult& e) {
  return {{"loss", e.loss}, {"tokens", e.tokens}, {"sequences", e.sequences}};
}

EvalResult eval_from_json(const nlohmann::json& j) {
  EvalResult e;
  e.loss = j.at("loss").get<double>();
  e.tokens = j.at("tokens").get<double>();
  e.sequences = j.at("sequences").get<int64_t>();
  return e;
}

nlohmann::json progress_json(const RunProgress& p) {
  nlohmann::json evals = nlohmann::json::array();
  for (const EvalPoint& e : p.evals)
    evals.push_back({{"step", e.step}, {"eval", eval_json(e.eval)}});
  return {{"step", p.step},
          {"data_epoch", p.data.epoch},
          {"data_batch", p.data.batch},
          {"train_tokens", p.train_tokens},
          {"window_loss_sum", p.window_loss_sum},
          {"window_loss_weight", p.window_loss_weight},
          {"window_steps", p.window_steps},
          {"last_train_loss", p.last_train_loss},
          {"last_grad_norm", p.last_grad_norm},
          {"initial_eval", p.initial_eval ? eval_json(*p.initial_eval) : nlohmann::json()},
          {"evals", evals}};
}

RunProgress progress_from_json(const nlohmann::json& j) {
  RunProgress p;
  p.step = j.at("step").get<int64_t>();
  p.data = {j.at("data_epoch").get<int64_t>(), j.at("data_batch").get<int64_t>()};
  p.train_tokens = j.at("train_tokens").get<int64_t>();
  p.window_loss_sum = j.at("window_loss_sum").get<double>();
  p.window_loss_weight = j.at("window_loss_weight").get<double>();
  p.window_steps = j.at("window_steps").get<int64_t>();
  p.last_train_loss = j.at("last_train_loss").get<double>();
  p.last_grad_norm = j.at("last_grad_norm").get<double>();
  if (!j.at("initial_eval").is_null()) p.initial_eval = eval_from_json(j.at("initial_eval"));
  for (const nlohmann::json& e : j.at("evals"))
    p.evals.push_back({e.at("step").get<int64_t>(), eval_from_json(e.at("eval"))});
  return p;
}

}  // namespace

std::string run_state_dir(const std::string& output) {
  std::string out = output;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out + ".state";
}

void save_run_state(const std::string& dir,
                    const nlohmann::json& fingerprint,
                    const RunProgress& progress,
                    const NamedArrays& arrays) {
  AtomicDir out(dir, AtomicDir::Existing::Replace);
  io::SafetensorsWriter w(out.file(kStateFile));
  w.set_metadata({{"format", kRunStateFormat},
                  {"format_version", "1"},
                  {"run", fingerprint.dump()},
                  {"progress", progress_json(progress).dump()}});
  for (const auto& [name, v] : arrays)
    w.declare(name, DType::F32, {static_cast<int64_t>(v.size())});
  w.begin();
  for (const auto& [name, v] : arrays) w.write(name, v.data(), v.size() * sizeof(float));
  w.commit();
  out.commit();
}

RunState load_run_state(const std::string& dir) {
  const std::string path = dir + "/" + kStateFile;
  LORDS_CHECK(std::filesystem::exists(path),
              ErrorKind::Io,
              "[resume] {}: no {} (not a run state directory)",
              dir,
              kStateFile);
  io::TensorIndex index;
  const std::map<std::string, std::string> meta = io::read_safetensors(path, &index);
  const auto value = [&](const char* key) -> const std::string& {
    const auto it = meta.find(key);
    LORDS_CHECK(
        it != meta.end(), ErrorKind::Format, "[resume] {}: metadata '{}' missing", path, key);
    return it->second;
  };
  LORDS_CHECK(value("format") == kRunStateFormat && value("format_version") == "1",
              ErrorKind::Format,
              "[resume] {}: not a lords finetune run state (format '{}' version '{}')",
              path,
              value("format"),
              value("format_version"));
  RunState s;
  try {
    s.fingerprint = nlohmann::json::parse(value("run"));
    s.progress = progress_from_json(nlohmann::json::parse(value("progress")));
  } catch (const nlohmann::json::exception& e) {
    LORDS_FAIL(ErrorKind::Format, "[resume] {}: bad run metadata: {}", path, e.what());
  }
  for (const std::string& name : index.names()) s.arrays[name] = index.load_f32(name).data;
  return s;
}

void check_same_run(const std::string& dir,
                    const nlohmann::json& saved,
                    const nlohmann::json& now) {
  for (const auto& [key, value] : now.items()) {
    const auto it = saved.find(key);
    const std::string was = it == saved.end() ? "(absent)" : it->dump();
    LORDS_CHECK(it != saved.end() && *it == value,
                ErrorKind::Usage,
                "[resume] {}: the run state is from another run: {} was {}, now {} (delete the "
                "directory to start over)",
                dir,
                key,
                was,
                value.dump());
  }
}

}  // namespace lords::train
