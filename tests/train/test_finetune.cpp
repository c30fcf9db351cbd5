// lords finetune as a library (train/finetune.h) on a tiny seeded model carrying the tiny Qwen2
// tokenizer (ChatML tokens), quantized by the engine: the held-out loss falls on JSONL (peft, qat)
// and on plain text (qlora); the reported held-out losses are the inference runtime's on the saved
// output; gradient accumulation equals one big batch; a run stopped and resumed is bit for bit the
// straight run; --match-params; bad input throws Error and writes nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "common/random_model.h"
#include "common/temp_dir.h"
#include "lords/core/error.h"
#include "lords/engine/checkpoint.h"
#include "lords/engine/quantize_model.h"
#include "lords/runtime/llama_model.h"
#include "lords/runtime/text_source.h"
#include "lords/train/finetune.h"
#include "lords/train/finetune_state.h"
#include "train/finetune_fixture.h"

namespace lords::train {
namespace {

namespace fs = std::filesystem;

// Held-out loss reported by finetune (TrainModel forward, batched) vs the runtime's forward of the
// saved checkpoint, both fp32: summation order only (train_model tests measure ~1e-6).
constexpr double kLossTol = 2e-5;

using fixture::Fixture;
using fixture::options;

// The loss of `ckpt` on the held-out set finetune used, through the inference runtime: each
// sequence from position 0, weighted cross-entropy in fp64.
double runtime_heldout_loss(const std::string& ckpt, const FinetuneOptions& o) {
  DataSpec spec;
  spec.train = o.data;
  spec.heldout_fraction = o.heldout_fraction;
  spec.split_seed = o.seed;
  spec.T = o.seq_len;
  spec.format = o.format;
  const TrainingData d = load_training_data(runtime::load_model_tokenizer(ckpt), spec);
  runtime::LlamaModel m = runtime::LlamaModel::load(ckpt, runtime::Backend::Cpu);
  const SequenceSet& s = d.heldout;
  const int64_t V = m.vocab(), T = s.T;
  std::vector<float> logits(static_cast<size_t>(T * V));
  double num = 0, den = 0;
  for (int64_t i = 0; i < s.size(); ++i) {
    runtime::KvCache cache = m.make_cache(T);
    m.forward(s.tokens.data() + i * T, T, cache, logits.data(), runtime::LogitsMode::All);
    for (int64_t t = 0; t < T; ++t) {
      const auto k = static_cast<size_t>(i * T + t);
      if (s.targets[k] < 0 || s.weights[k] <= 0) continue;
      const float* row = logits.data() + t * V;
      double mx = row[0], sum = 0;
      for (int64_t v = 0; v < V; ++v) mx = std::max(mx, static_cast<double>(row[v]));
      for (int64_t v = 0; v < V; ++v) sum += std::exp(row[v] - mx);
      num += s.weights[k] * (std::log(sum) + mx - row[s.targets[k]]);
      den += s.weights[k];
    }
  }
  return num / den;
}

ErrorKind kind_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.kind();
  }
  return ErrorKind::Internal;
}

// ---------------------------------------------------------------------------------------------
// Learning, and the numbers it reports.

TEST(Finetune, PeftOnJsonlLowersHeldOutLossAsTheRuntimeMeasuresIt) {
  lords::test::TempDir tmp;
  FinetuneOptions o = options(TuneMode::Peft, tmp.file("out"));
  o.eval_every = 4;
  std::vector<std::string> lines;
  o.log = [&](const std::string& l) { lines.push_back(l); };
  const FinetuneResult r = finetune(o);
  ASSERT_TRUE(r.completed);
  ASSERT_TRUE(r.initial_eval && r.final_eval);
  EXPECT_LT(r.final_eval->loss, 0.8 * r.initial_eval->loss)
      << r.initial_eval->loss << " -> " << r.final_eval->loss;
  EXPECT_EQ(r.format, "chatml");
  EXPECT_EQ(r.steps_done, 12);
  EXPECT_EQ(r.evals.size(), 4u);  // 0, 4, 8, 12
  EXPECT_EQ(r.heldout_sequences, 12);
  EXPECT_GT(r.train_tokens, 0);
  EXPECT_GT(r.trainable_params, 0);
  EXPECT_NEAR(r.final_eval->ppl(), std::exp(r.final_eval->loss), 1e-9);
  // Initial and final held-out losses are the runtime's on the source and on the saved output.
  EXPECT_NEAR(r.initial_eval->loss, runtime_heldout_loss(o.checkpoint, o), kLossTol);
  EXPECT_NEAR(r.final_eval->loss, runtime_heldout_loss(o.output, o), kLossTol);
  EXPECT_EQ(engine::Checkpoint(o.output).method(), engine::Method::Lords);
  EXPECT_FALSE(fs::exists(run_state_dir(o.output)));
  // Every update logged, the evaluations too, the trainable count first.
  int steps = 0, evals = 0;
  for (const std::string& l : lines) {
    steps += l.starts_with("step ");
    evals += l.starts_with("eval ");
  }
  EXPECT_EQ(steps, 12);
  EXPECT_EQ(evals, 4);
  ASSERT_GE(lines.size(), 4u);
  EXPECT_TRUE(lines[0].starts_with("finetune peft: ")) << lines[0];
  EXPECT_TRUE(lines[2].starts_with("trainable parameters: ")) << lines[2];
  // --eval-only on the output reproduces the final number (F32 scales: the same model).
  FinetuneOptions e;
  e.checkpoint = o.output;
  e.data = o.data;
  e.heldout_fraction = o.heldout_fraction;
  e.seq_len = o.seq_len;
  e.eval_only = true;
  const FinetuneResult er = finetune(e);
  EXPECT_EQ(er.mode, "peft");
  EXPECT_EQ(er.final_eval->loss, r.final_eval->loss);
  const nlohmann::json j = r.to_json();
  EXPECT_EQ(j["final"]["loss"].get<double>(), r.final_eval->loss);
  EXPECT_EQ(j["trainable_params"].get<int64_t>(), r.trainable_params);
}

TEST(Finetune, QloraOnPlainTextRunsInTheRuntimeWithItsAdapters) {
  lords::test::TempDir tmp;
  FinetuneOptions o = options(TuneMode::Qlora, tmp.file("out"));
  o.data = {Fixture::get().text()};
  o.format = PromptFormat::Plain;
  o.seq_len = 16;
  o.heldout_fraction = 0.2;
  const FinetuneResult r = finetune(o);
  ASSERT_TRUE(r.initial_eval && r.final_eval);
  EXPECT_LT(r.final_eval->loss, 0.7 * r.initial_eval->loss);
  EXPECT_EQ(r.lora_rank, 4);
  EXPECT_EQ(r.format, "plain");
  EXPECT_TRUE(fs::exists(o.output + "/adapters.safetensors"));
  // The runtime adds the LoRA branches: it measures the tuned model, not the base.
  EXPECT_EQ(runtime::LlamaModel::load(o.output, runtime::Backend::Cpu).lora_linears(), 14);
  EXPECT_NEAR(r.final_eval->loss, runtime_heldout_loss(o.output, o), kLossTol);
  EXPECT_NEAR(r.initial_eval->loss, runtime_heldout_loss(o.checkpoint, o), kLossTol);
}

TEST(Finetune, QatLowersHeldOutLoss) {
  lords::test::TempDir tmp;
  FinetuneOptions o = options(TuneMode::Qat, tmp.file("out"));
  const FinetuneResult r = finetune(o);
  ASSERT_TRUE(r.initial_eval && r.final_eval);
  EXPECT_LT(r.final_eval->loss, 0.8 * r.initial_eval->loss);
  EXPECT_EQ(engine::Checkpoint(o.output).method(), engine::Method::Lords);
  // The final number is the saved checkpoint's (codes re-chosen from the latent W).
  EXPECT_NEAR(r.final_eval->loss, runtime_heldout_loss(o.output, o), kLossTol);
}

TEST(Finetune, GradientAccumulationEqualsOneBigBatch) {
  // The same 8 sequences per update (one permutation per epoch, whatever the batch size), as 1 x 8
  // or 4 x 2: micro-batches weighted by their loss tokens make the two gradients equal up to
  // summation order.
  lords::test::TempDir tmp;
  FinetuneOptions big = options(TuneMode::Peft, tmp.file("big"));
  big.steps = 3;
  big.warmup = 0;
  big.batch = 8;
  FinetuneOptions small = big;
  small.output = tmp.file("small");
  small.batch = 2;
  small.grad_accum = 4;
  const FinetuneResult a = finetune(big), b = finetune(small);
  EXPECT_EQ(a.train_tokens, b.train_tokens);
  EXPECT_NEAR(a.final_eval->loss, b.final_eval->loss, 1e-4);
  EXPECT_NEAR(a.train_loss, b.train_loss, 1e-5);
}

// ---------------------------------------------------------------------------------------------
// Resume: 2N updates straight == N updates, stop, resume N, bit for bit.

class FinetuneResume : public ::testing::TestWithParam<TuneMode> {};

TEST_P(FinetuneResume, StopAndResumeIsBitExact) {
  lords::test::TempDir tmp;
  FinetuneOptions o = options(GetParam(), tmp.file("straight"));
  o.steps = 8;
  o.batch = 3;
  o.grad_accum = 2;
  o.log_every = 3;   // a logging window open across the stop
  o.eval_every = 2;  // evaluations before and after it
  o.qat_scale_only_steps = 3;
  const FinetuneResult straight = finetune(o);

  FinetuneOptions first = o;
  first.output = tmp.file("resumed");
  first.stop_at = 4;
  const FinetuneResult stopped = finetune(first);
  EXPECT_FALSE(stopped.completed);
  EXPECT_EQ(stopped.steps_done, 4);
  EXPECT_FALSE(fs::exists(first.output));
  ASSERT_TRUE(fs::exists(run_state_dir(first.output)));
  // Without --resume the state is refused, not overwritten.
  EXPECT_EQ(kind_of([&] {
              FinetuneOptions again = first;
              again.stop_at = 0;
              finetune(again);
            }),
            ErrorKind::Usage);

  FinetuneOptions second = first;
  second.stop_at = 0;
  second.resume = true;
  const FinetuneResult resumed = finetune(second);
  ASSERT_TRUE(resumed.completed);
  EXPECT_EQ(resumed.resumed_from, 4);
  EXPECT_FALSE(fs::exists(run_state_dir(second.output)));
  const char* file = GetParam() == TuneMode::Qlora ? "adapters.safetensors" : "model.safetensors";
  EXPECT_TRUE(lords::test::read_bytes(o.output + "/" + file) ==
              lords::test::read_bytes(second.output + "/" + file))
      << file << " differs";
  EXPECT_EQ(resumed.final_eval->loss, straight.final_eval->loss);
  EXPECT_EQ(resumed.initial_eval->loss, straight.initial_eval->loss);
  EXPECT_EQ(resumed.train_loss, straight.train_loss);
  EXPECT_EQ(resumed.last_grad_norm, straight.last_grad_norm);
  EXPECT_EQ(resumed.train_tokens, straight.train_tokens);
  ASSERT_EQ(resumed.evals.size(), straight.evals.size());
  for (size_t i = 0; i < straight.evals.size(); ++i) {
    EXPECT_EQ(resumed.evals[i].step, straight.evals[i].step);
    EXPECT_EQ(resumed.evals[i].eval.loss, straight.evals[i].eval.loss);
  }
}

TEST_P(FinetuneResume, RunKilledAfterASaveResumesBitExact) {
  lords::test::TempDir tmp;
  FinetuneOptions o = options(GetParam(), tmp.file("straight"));
  o.steps = 6;
  o.qat_scale_only_steps = 3;
  const FinetuneResult straight = finetune(o);
  // The process dies right after the run state of update 4 is written (--save-every 2).
  FinetuneOptions killed = o;
  killed.output = tmp.file("killed");
  killed.save_every = 2;
  killed.log = [](const std::string& line) {
    if (line.starts_with("saved run state at update 4 ")) throw std::runtime_error("killed");
  };
  EXPECT_THROW(finetune(killed), std::runtime_error);
  EXPECT_FALSE(fs::exists(killed.output));
  killed.log = nullptr;
  killed.resume = true;
  const FinetuneResult resumed = finetune(killed);
  EXPECT_EQ(resumed.resumed_from, 4);
  const char* file = GetParam() == TuneMode::Qlora ? "adapters.safetensors" : "model.safetensors";
  EXPECT_TRUE(lords::test::read_bytes(o.output + "/" + file) ==
              lords::test::read_bytes(killed.output + "/" + file))
      << file << " differs";
  EXPECT_EQ(resumed.final_eval->loss, straight.final_eval->loss);
}

INSTANTIATE_TEST_SUITE_P(Modes,
                         FinetuneResume,
                         ::testing::Values(TuneMode::Peft, TuneMode::Qat, TuneMode::Qlora),
                         [](const auto& p) { return std::string(tune_mode_name(p.param)); });

TEST(Finetune, ResumeRefusesTheStateOfAnotherRun) {
  lords::test::TempDir tmp;
  FinetuneOptions o = options(TuneMode::Peft, tmp.file("out"));
  o.steps = 4;
  o.stop_at = 2;
  finetune(o);
  const std::string state = lords::test::read_bytes(run_state_dir(o.output) + "/state.safetensors");
  o.stop_at = 0;
  o.resume = true;
  o.lr = 2e-2f;
  try {
    finetune(o);
    ADD_FAILURE() << "resumed another run";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("another run: lr"), std::string::npos) << e.what();
  }
  o.lr = 1e-2f;
  o.data = {Fixture::get().jsonl(), Fixture::get().text()};  // other data
  EXPECT_EQ(kind_of([&] { finetune(o); }), ErrorKind::Usage);
  EXPECT_FALSE(fs::exists(o.output));
  EXPECT_TRUE(lords::test::read_bytes(run_state_dir(o.output) + "/state.safetensors") == state);
}

// ---------------------------------------------------------------------------------------------
// Recipes and errors.

TEST(Finetune, MatchParamsPicksTheLoraRankOfEqualTrainableCount) {
  // Rank 4 on every linear of the lords checkpoint: LoRA rank 4 on the same linears matches
  // exactly.
  const RankMatch m = match_lora_rank(Fixture::get().nf4(), Fixture::get().lords());
  EXPECT_EQ(m.rank, 4);
  EXPECT_EQ(m.lora_params, m.lords_params);
  lords::test::TempDir tmp;
  FinetuneOptions o = options(TuneMode::Qlora, tmp.file("out"));
  o.steps = 1;
  o.warmup = 0;
  o.lora_rank = 16;  // overridden
  o.match_params = Fixture::get().lords();
  const FinetuneResult r = finetune(o);
  EXPECT_EQ(r.lora_rank, 4);
  EXPECT_EQ(r.trainable_params, m.lords_params);
  EXPECT_EQ(kind_of([&] { match_lora_rank(Fixture::get().lords(), Fixture::get().nf4()); }),
            ErrorKind::Usage);
}

TEST(Finetune, BadInputThrowsAndWritesNothing) {
  lords::test::TempDir tmp;
  const std::string out = tmp.file("out");
  const auto fails = [&](ErrorKind kind, const std::function<void(FinetuneOptions&)>& change) {
    FinetuneOptions o = options(TuneMode::Peft, out);
    o.steps = 2;
    change(o);
    EXPECT_EQ(kind_of([&] { finetune(o); }), kind);
    EXPECT_FALSE(fs::exists(out));
    EXPECT_FALSE(fs::exists(run_state_dir(out)));
  };
  lords::test::write_bytes(tmp.file("empty.jsonl"), "\n\n");
  fails(ErrorKind::Io, [&](FinetuneOptions& o) { o.data = {tmp.file("missing.jsonl")}; });
  fails(ErrorKind::Format, [&](FinetuneOptions& o) { o.data = {tmp.file("empty.jsonl")}; });
  fails(ErrorKind::Usage, [](FinetuneOptions& o) { o.seq_len = 1; });
  fails(ErrorKind::Usage, [](FinetuneOptions& o) { o.seq_len = 8; });  // no answer within 8 tokens
  fails(ErrorKind::Usage, [](FinetuneOptions& o) { o.seq_len = 300; });  // beyond max positions
  fails(ErrorKind::Usage, [](FinetuneOptions& o) { o.mode.reset(); });
  fails(ErrorKind::Usage, [](FinetuneOptions& o) { o.checkpoint = Fixture::get().nf4(); });
  fails(ErrorKind::Usage, [](FinetuneOptions& o) {
    o.mode = TuneMode::Qlora;
    o.checkpoint = Fixture::get().lords();
  });
  fails(ErrorKind::Usage, [](FinetuneOptions& o) { o.warmup = 2; });  // warm-up >= steps
  fails(ErrorKind::Usage, [](FinetuneOptions& o) { o.match_params = Fixture::get().lords(); });
  fails(ErrorKind::Io, [&](FinetuneOptions& o) { o.output = tmp.file("no/such/dir"); });
  EXPECT_EQ(kind_of([] { tune_mode_from_name("lora"); }), ErrorKind::Usage);
  // An existing output is refused before training.
  fs::create_directory(out);
  lords::test::write_bytes(out + "/keep.txt", "x");
  FinetuneOptions o = options(TuneMode::Peft, out);
  EXPECT_EQ(kind_of([&] { finetune(o); }), ErrorKind::Usage);
  EXPECT_EQ(lords::test::read_bytes(out + "/keep.txt"), "x");
}

}  // namespace
}  // namespace lords::train
