// lords inspect CKPT [--json]: settings, per-layer table and storage of a lords checkpoint.
// lords inspect --delta BASE TUNED [TUNED ...] --layer NAME [--label L ...] [--plot out.svg]
// [--json]:
//   the singular-value spectrum of the fine-tuning update ΔW of one linear for each TUNED (a LoRDS
//   PEFT checkpoint, a QLoRA adapter directory or a dense model; engine/delta_spectrum.h), as a
//   table or JSON, and optionally as an SVG plot of all of them (written atomically).
#include <cstdio>
#include <filesystem>

#include "lords/core/atomic_output.h"
#include "lords/core/error.h"
#include "lords/engine/checkpoint.h"
#include "lords/engine/delta_spectrum.h"
#include "lords/engine/inspect.h"
#include "lords/engine/spectrum_plot.h"
#include "tools/commands.h"

namespace lords::tools {
namespace {

struct Opts {
  std::string checkpoint;
  std::vector<std::string> delta;   // BASE TUNED [TUNED ...]
  std::vector<std::string> labels;  // one per TUNED
  std::string layer, plot;
  bool json = false;
};

// "runs/peft-r32/" -> "peft-r32"
std::string default_label(const std::string& path) {
  std::filesystem::path p = std::filesystem::path(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

int run_delta(const Opts& o) {
  LORDS_CHECK(o.checkpoint.empty(),
              ErrorKind::Usage,
              "inspect: give either a checkpoint or --delta BASE TUNED ...");
  LORDS_CHECK(!o.layer.empty(), ErrorKind::Usage, "inspect --delta needs --layer NAME");
  const size_t n_tuned = o.delta.size() - 1;
  LORDS_CHECK(o.labels.empty() || o.labels.size() == n_tuned,
              ErrorKind::Usage,
              "inspect --delta: {} --label given for {} TUNED",
              o.labels.size(),
              n_tuned);
  const engine::Checkpoint base(o.delta[0]);
  const std::string layer = engine::resolve_layer(base, o.layer);
  std::vector<engine::Spectrum> spectra;
  for (size_t i = 0; i < n_tuned; ++i) {
    const std::string& tuned = o.delta[i + 1];
    const engine::Delta d = engine::load_delta(base, tuned, layer);
    spectra.push_back(
        engine::delta_spectrum(d, o.labels.empty() ? default_label(tuned) : o.labels[i], tuned));
  }
  nlohmann::json report = engine::spectra_json(o.delta[0], layer, spectra);
  if (!o.plot.empty()) {
    write_file_atomic(o.plot,
                      engine::spectrum_svg(spectra, "Singular values of \u0394W: " + layer));
    report["plot"] = o.plot;
  }
  std::printf("%s\n", o.json ? report.dump(2).c_str() : engine::spectra_text(report).c_str());
  return 0;
}

}  // namespace

Command add_inspect(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand(
      "inspect", "Describe a lords checkpoint, or the spectrum of a fine-tuning update");
  sub->add_option("checkpoint", o->checkpoint, "lords checkpoint directory");
  sub->add_option(
         "--delta",
         o->delta,
         "BASE TUNED [TUNED ...]: singular values of dW for --layer; TUNED is a LoRDS checkpoint "
         "with "
         "BASE's codes, a directory with adapters.safetensors (QLoRA), or a dense HF/GGUF model")
      ->expected(2, CLI::detail::expected_max_vector_size);
  sub->add_option("--layer",
                  o->layer,
                  "with --delta: the linear, HF (model.layers.0.self_attn.q_proj) or internal "
                  "(blk.0.attn_q) name");
  sub->add_option(
      "--label", o->labels, "with --delta: legend/table name of each TUNED, in order (repeatable)");
  sub->add_option(
      "--plot", o->plot, "with --delta: write an SVG plot of sigma_i/sigma_1 to this file");
  sub->add_flag("--json", o->json, "print JSON");
  return {
      sub, [o]() {
        if (!o->delta.empty()) return run_delta(*o);
        LORDS_CHECK(
            !o->checkpoint.empty(),
            ErrorKind::Usage,
            "inspect: give a checkpoint directory, or --delta BASE TUNED [TUNED ...] --layer NAME");
        LORDS_CHECK(o->layer.empty() && o->plot.empty() && o->labels.empty(),
                    ErrorKind::Usage,
                    "inspect: --layer, --label and --plot go with --delta");
        const engine::Checkpoint ck(o->checkpoint);
        const nlohmann::json j = engine::describe_checkpoint(ck);
        std::printf("%s\n", o->json ? j.dump(2).c_str() : engine::describe_text(j).c_str());
        return 0;
      }};
}

}  // namespace lords::tools
