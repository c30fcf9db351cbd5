// lords finetune CKPT --data FILE_OR_DIR --mode peft|qat|qlora -o OUT [--steps N] [--batch B]
//                [--seq-len T] [--grad-accum A] [--lr LR] [--save-every N] [--resume] [--json] ...
// The library does the work (train/finetune.h); this file maps flags to FinetuneOptions and prints.
#include <cstdio>

#include "lords/core/error.h"
#include "lords/train/finetune.h"
#include "lords/train/finetune_setup.h"
#include "lords/train/finetune_state.h"
#include "tools/commands.h"

namespace lords::tools {
namespace {

struct Opts {
  train::FinetuneOptions f;
  std::string mode, format, recompute = "on", split_by = "item", backend = "cpu", device = "cpu";
  bool json = false, quiet = false;
};

void add_options(CLI::App* sub, Opts& o) {
  train::FinetuneOptions& f = o.f;
  sub->add_option(
         "checkpoint", f.checkpoint, "lords checkpoint (peft, qat: method lords; qlora: rtn NF4)")
      ->required();
  sub->add_option("--data",
                  f.data,
                  "training data: .jsonl/.json examples, .txt text, or a directory (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->add_option(
      "--mode", o.mode, "peft (LoRDS B, A) | qat (B, A and latent W) | qlora (LoRA on NF4)");
  sub->add_option(
      "-o,--output", f.output, "output: peft/qat a lords checkpoint, qlora base + adapters");
  sub->add_flag("--force", f.overwrite, "replace an existing output");
  sub->add_option("--steps", f.steps, "optimizer updates (0 = one epoch)")->capture_default_str();
  sub->add_option("--batch", f.batch, "sequences per micro-batch")->capture_default_str();
  sub->add_option("--seq-len", f.seq_len, "tokens per sequence T (longer examples are cut)")
      ->capture_default_str();
  sub->add_option("--grad-accum", f.grad_accum, "micro-batches per update")->capture_default_str();
  sub->add_option("--lr", f.lr, "peak learning rate (0 = peft 1e-4, qlora 2e-4, qat 2e-5)")
      ->capture_default_str();
  sub->add_option("--warmup", f.warmup, "linear warm-up updates (-1 = 10% of --steps)")
      ->capture_default_str();
  sub->add_option("--min-lr-ratio", f.min_lr_ratio, "cosine decays to lr x this")
      ->capture_default_str();
  sub->add_option("--weight-decay", f.weight_decay, "decoupled weight decay (AdamW)")
      ->capture_default_str();
  sub->add_option("--clip", f.clip, "max global gradient norm (0 = off)")->capture_default_str();
  sub->add_option("--seed", f.seed, "data order, held-out split, LoRA init")->capture_default_str();
  sub->add_option("--held-out",
                  f.heldout,
                  "held-out file or directory (repeatable); default: split off --data")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->add_option("--held-out-fraction",
                  f.heldout_fraction,
                  "share of --data held out (0 = none; ignored with --held-out)")
      ->capture_default_str();
  sub->add_option("--split-by", o.split_by, "held-out unit: item (example / text window) | file")
      ->capture_default_str();
  sub->add_option(
      "--format", o.format, "chatml | plain (default: chatml if the tokenizer has its tokens)");
  sub->add_option("--system", f.system_prompt, "ChatML system prompt");
  sub->add_option("--eval-every",
                  f.eval_every,
                  "held-out evaluation every N updates (0 = first and last only)")
      ->capture_default_str();
  sub->add_option("--eval-batches", f.eval_batches, "held-out batches per evaluation (0 = all)")
      ->capture_default_str();
  sub->add_option("--log-every", f.log_every, "a progress line every N updates")
      ->capture_default_str();
  sub->add_flag(
      "--eval-only", f.eval_only, "only evaluate CKPT on the held-out data (mode from CKPT)");
  sub->add_option("--lora-rank", f.lora_rank, "qlora: LoRA rank r")->capture_default_str();
  sub->add_option("--lora-alpha", f.lora_alpha, "qlora: scaling alpha / r")->capture_default_str();
  sub->add_option(
      "--match-params",
      f.match_params,
      "qlora: a lords checkpoint of the same model; pick the LoRA rank whose trainable count is "
      "closest to LoRDS peft on it");
  sub->add_option("--qat-scale-only-steps",
                  f.qat_scale_only_steps,
                  "qat: updates that train B, A alone before W joins (-1 = 20% of --steps, as the "
                  "paper's 250/1250)")
      ->capture_default_str();
  sub->add_option("--scale-lr-mult",
                  f.scale_lr_mult,
                  "lr multiplier of B, A (0 = qat 4 as the paper, peft 1)")
      ->capture_default_str();
  sub->add_option(
      "--qat-base", f.qat_base, "qat: the float model (HF dir or .gguf) seeding the latent W");
  sub->add_option("--save-every",
                  f.save_every,
                  "save the run state to OUT.state every N updates (0 = never)")
      ->capture_default_str();
  sub->add_flag("--resume", f.resume, "continue from OUT.state (bit-exact; options must match)");
  sub->add_option(
         "--stop-at", f.stop_at, "stop after update N, saving the run state (0 = run to the end)")
      ->capture_default_str();
  sub->add_option("--threads", f.threads, "threads (0 = all cores)")->capture_default_str();
  sub->add_option("--recompute", o.recompute, "activation checkpointing: on (less memory) | off")
      ->capture_default_str();
  sub->add_option("--device", o.device, "cpu | cuda (forward and backward on the GPU)")->capture_default_str();
  sub->add_flag("--tf32", f.tf32, "with --device cuda: GEMMs on TF32 tensor cores (faster, 10-bit mantissa products)");
  sub->add_option("--backend", o.backend, "cpu | ref (the slow scalar reference)")
      ->capture_default_str();
  sub->add_flag("--json", o.json, "print the summary as JSON on stdout");
  sub->add_flag("-q,--quiet", o.quiet, "no progress lines");
}

void print_summary(const Opts& o, const train::FinetuneResult& r) {
  using train::format_count;
  using train::format_seconds;
  if (o.json) {
    std::printf("%s\n", r.to_json().dump(2).c_str());
    return;
  }
  if (o.f.eval_only) {
    std::printf("%s (%s): held-out loss %.4f, ppl %.4f over %s tokens in %lld sequences\n",
                r.checkpoint.c_str(),
                r.mode.c_str(),
                r.final_eval->loss,
                r.final_eval->ppl(),
                format_count(static_cast<int64_t>(r.final_eval->tokens)).c_str(),
                static_cast<long long>(r.final_eval->sequences));
    return;
  }
  std::printf("finetune %s: %lld/%lld updates, %s train tokens in %s (%.0f tokens/s, %.0f positions/s), wall %s\n",
              r.mode.c_str(),
              static_cast<long long>(r.steps_done),
              static_cast<long long>(r.total_steps),
              format_count(r.train_tokens).c_str(),
              format_seconds(r.train_s).c_str(),
              r.tokens_per_s,
              r.positions_per_s,
              format_seconds(r.wall_s).c_str());
  std::printf("trainable parameters: %s%s\n",
              format_count(r.trainable_params).c_str(),
              r.lora_rank > 0 ? fmt::format(" (LoRA rank {})", r.lora_rank).c_str() : "");
  if (r.initial_eval && r.final_eval)
    std::printf("held-out loss %.4f -> %.4f, ppl %.4f -> %.4f (%s tokens)\n",
                r.initial_eval->loss,
                r.final_eval->loss,
                r.initial_eval->ppl(),
                r.final_eval->ppl(),
                format_count(static_cast<int64_t>(r.final_eval->tokens)).c_str());
  if (r.completed)
    std::printf("wrote %s\n", r.output.c_str());
  else
    std::printf("stopped after update %lld; run state in %s (continue with --resume)\n",
                static_cast<long long>(r.steps_done),
                train::run_state_dir(r.output).c_str());
}

}  // namespace

Command add_finetune(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand(
      "finetune", "Fine-tune a quantized checkpoint: LoRDS peft, LoRDS qat or qlora");
  add_options(sub, *o);
  return {sub, [o]() {
            train::FinetuneOptions f = o->f;
            if (!o->mode.empty()) f.mode = train::tune_mode_from_name(o->mode);
            if (!o->format.empty()) f.format = train::prompt_format_from_name(o->format);
            LORDS_CHECK(o->recompute == "on" || o->recompute == "off",
                        ErrorKind::Usage,
                        "--recompute must be on or off, got '{}'",
                        o->recompute);
            f.recompute = o->recompute == "on" ? train::Recompute::Layers : train::Recompute::Off;
            LORDS_CHECK(o->split_by == "item" || o->split_by == "file",
                        ErrorKind::Usage,
                        "--split-by must be item or file, got '{}'",
                        o->split_by);
            f.split_unit = o->split_by == "item" ? train::SplitUnit::Item : train::SplitUnit::File;
            LORDS_CHECK(o->backend == "cpu" || o->backend == "ref",
                        ErrorKind::Usage,
                        "--backend must be cpu or ref, got '{}'",
                        o->backend);
            f.backend = o->backend == "cpu" ? runtime::Backend::Cpu : runtime::Backend::Ref;
            f.device = runtime::device_from_name(o->device);
            if (!o->quiet)
              f.log = [](const std::string& line) {
                std::fprintf(stderr, "%s\n", line.c_str());
                std::fflush(stderr);
              };
            print_summary(*o, train::finetune(f));
            return 0;
          }};
}

}  // namespace lords::tools
