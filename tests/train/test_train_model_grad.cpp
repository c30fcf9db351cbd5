// TrainModel gradients checked end to end. The model is templated, so it runs in fp64 on the ref
// ops and central finite differences of its loss are exact to ~1e-9: every mode (peft B, A; qat
// B, A; qlora adapters) on every arch (GQA, tied embeddings, qwen2 biases), with logits in chunks
// of 5 rows so the chunked loss scaling is covered. The QAT latent-weight gradient is a
// straight-through estimate, not the derivative of the (piecewise-constant in W) loss, so it is
// checked by the identities that tie it to the finite-difference-checked dB, dA (with the STE
// passing everything, dW = dW_hat and dB = (dW (.) L) A^T, dA = B^T (dW (.) L)). Then the fp32
// cpu model's gradients are compared against the fp64 ones.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "lords/engine/checkpoint.h"
#include "lords/train/fake_quant.h"
#include "train/train_model_util.h"

namespace lords::train::test {
namespace {

using runtime::Backend;

// Central differences in fp64 with h = 1e-6: truncation ~ h^2 |L'''| ~ 1e-12, rounding
// ~ 1e-16 |L| / h ~ 1e-9; the gradients are ~1e-3..1. Judged at the scale of the largest sampled
// gradient of the same role, plus a relative term.
constexpr double kFdStep = 1e-6;
constexpr double kFdAtol = 1e-7;  // x max |fd| of the role
constexpr double kFdRtol = 1e-6;
// fp32 cpu vs fp64 ref gradients through two layers, head and loss: max |diff| / max |ref| per
// tensor. Measured <= ~2e-5; a wrong term moves it to O(1).
constexpr double kCpuVsRefTol = 1e-4;

TrainModelOptions options(TuneMode mode, Backend backend) {
  TrainModelOptions o;
  o.mode = mode;
  o.backend = backend;
  o.lora_rank = 4;
  o.lora_alpha = 8.0f;
  o.lora_seed = 3;
  o.head_rows = 5;
  o.ste = SteRange::PassAll;  // the identities below; ZeroOutside differs only where W/S saturates
  return o;
}

template <class Real>
TrainModel<Real> load(const std::string& arch, TuneMode mode, Backend backend) {
  TrainModel<Real> m =
      TrainModel<Real>::load(Checkpoints::get().for_mode(arch, mode), options(mode, backend));
  // LoRA B starts at 0, where every adapter gradient but dB vanishes: give it small values.
  std::mt19937 rng(17);
  std::normal_distribution<double> normal(0.0, 0.05);
  for (ParamRef<Real>& p : m.params())
    if (p.name.ends_with(".lora_B"))
      for (int64_t i = 0; i < p.size; ++i) p.value[i] = static_cast<Real>(normal(rng));
  return m;
}

struct Sample {
  std::string name;
  int64_t index = 0;
  double grad = 0, fd = 0;
};

std::string role_of(const std::string& name) {
  return name.substr(name.rfind('.') + 1);
}

using ArchMode = std::tuple<int, TuneMode>;
std::string arch_mode_name(const ::testing::TestParamInfo<ArchMode>& p) {
  return std::string(archs()[static_cast<size_t>(std::get<0>(p.param))].name) + "_" +
         tune_mode_name(std::get<1>(p.param));
}
const TuneMode kModes[] = {TuneMode::Peft, TuneMode::Qat, TuneMode::Qlora};

class GradCheck : public ::testing::TestWithParam<ArchMode> {};

TEST_P(GradCheck, MatchesFiniteDifferencesInFp64) {
  const auto [ai, mode] = GetParam();
  const char* arch = archs()[static_cast<size_t>(ai)].name;
  TrainModel<double> m = load<double>(arch, mode, Backend::Ref);
  const Batch b = make_batch(m.config().vocab, 2, 6, 31);
  m.zero_grad();
  m.forward_backward(b.tokens.data(), b.targets.data(), b.weights.data(), b.B, b.T);
  auto loss = [&] {
    return m.eval_loss(b.tokens.data(), b.targets.data(), b.weights.data(), b.B, b.T).loss;
  };
  // Three entries of every trainable tensor except the latent W (see the file comment).
  std::mt19937 rng(5);
  std::vector<Sample> samples;
  for (ParamRef<double>& p : m.params()) {
    if (p.role == ParamRole::Latent) continue;
    std::uniform_int_distribution<int64_t> pick(0, p.size - 1);
    for (int s = 0; s < 3; ++s) {
      const int64_t i = pick(rng);
      const double keep = p.value[i];
      p.value[i] = keep + kFdStep;
      const double up = loss();
      p.value[i] = keep - kFdStep;
      const double down = loss();
      p.value[i] = keep;
      samples.push_back({p.name, i, p.grad[i], (up - down) / (2 * kFdStep)});
    }
  }
  std::map<std::string, double> scale;  // per role: max |fd|
  for (const Sample& s : samples)
    scale[role_of(s.name)] = std::max(scale[role_of(s.name)], std::abs(s.fd));
  for (const auto& [role, sc] : scale) EXPECT_GT(sc, 1e-4) << role << ": gradients trivially small";
  for (const Sample& s : samples) {
    const double tol = kFdAtol * scale[role_of(s.name)] + kFdRtol * std::abs(s.fd);
    EXPECT_LE(std::abs(s.grad - s.fd), tol)
        << s.name << "[" << s.index << "] grad " << s.grad << " fd " << s.fd;
  }
}

INSTANTIATE_TEST_SUITE_P(All,
                         GradCheck,
                         ::testing::Combine(::testing::Values(0, 1, 2),
                                            ::testing::ValuesIn(kModes)),
                         arch_mode_name);

// QAT: dW against the identities with the finite-difference-checked dB, dA, for every linear.
class QatLatentGrad : public ::testing::TestWithParam<int> {};

TEST_P(QatLatentGrad, TiedToScaleGradients) {
  const char* arch = archs()[static_cast<size_t>(GetParam())].name;
  const std::string ck_dir = Checkpoints::get().lords(arch);
  TrainModel<double> m = load<double>(arch, TuneMode::Qat, Backend::Ref);
  const Batch b = make_batch(m.config().vocab, 2, 6, 32);
  m.zero_grad();
  m.forward_backward(b.tokens.data(), b.targets.data(), b.weights.data(), b.B, b.T);
  const engine::Checkpoint ck(ck_dir);
  const std::vector<double> levels(ck.codebook().levels.begin(), ck.codebook().levels.end());
  std::map<std::string, ParamRef<double>> by_name;
  for (ParamRef<double>& p : m.params()) by_name[p.name] = p;
  int checked = 0;
  for (const std::string& name : ck.quantized_names()) {
    const ParamRef<double>& W = by_name.at(name + ".latent");
    const ParamRef<double>& B = by_name.at(name + ".lords_B");
    const ParamRef<double>& A = by_name.at(name + ".lords_A");
    const int64_t N = ck.layer_table().at(name).at("shape").at(0),
                  K = ck.layer_table().at(name).at("shape").at(1);
    const int64_t r = ck.layer_table().at(name).at("rank");
    // The codes the forward chose, from the same W, B, A.
    std::vector<uint8_t> codes(static_cast<size_t>(N * K));
    std::vector<double> W_hat(codes.size());
    ref::fake_quant_weight<double>(
        W_hat.data(), codes.data(), {N, K, r, ck.bits(), W.value, B.value, A.value, levels.data()});
    // dS = dW (.) L; then dB = dS A^T and dA = B^T dS.
    std::vector<double> dS(codes.size());
    for (size_t i = 0; i < codes.size(); ++i) dS[i] = W.grad[i] * levels[codes[i]];
    double gB_max = 0, gA_max = 0, errB = 0, errA = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < r; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k)
          s += dS[static_cast<size_t>(n * K + k)] * A.value[j * K + k];
        errB = std::max(errB, std::abs(s - B.grad[n * r + j]));
        gB_max = std::max(gB_max, std::abs(B.grad[n * r + j]));
      }
    for (int64_t j = 0; j < r; ++j)
      for (int64_t k = 0; k < K; ++k) {
        double s = 0;
        for (int64_t n = 0; n < N; ++n)
          s += B.value[n * r + j] * dS[static_cast<size_t>(n * K + k)];
        errA = std::max(errA, std::abs(s - A.grad[j * K + k]));
        gA_max = std::max(gA_max, std::abs(A.grad[j * K + k]));
      }
    EXPECT_GT(gB_max, 0) << name;
    EXPECT_LE(errB, 1e-10 * gB_max) << name;
    EXPECT_LE(errA, 1e-10 * gA_max) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 14);
}

INSTANTIATE_TEST_SUITE_P(Archs, QatLatentGrad, ::testing::Values(0, 1, 2), [](const auto& p) {
  return std::string(archs()[static_cast<size_t>(p.param)].name);
});

// The fp32 cpu model (BLAS, tiled backward, online-softmax attention) against the fp64 oracle.
class CpuGrad : public ::testing::TestWithParam<ArchMode> {};

TEST_P(CpuGrad, MatchesFp64Reference) {
  const auto [ai, mode] = GetParam();
  const char* arch = archs()[static_cast<size_t>(ai)].name;
  TrainModel<double> ref = load<double>(arch, mode, Backend::Ref);
  TrainModel<float> cpu = load<float>(arch, mode, Backend::Cpu);
  const Batch b = make_batch(ref.config().vocab, 2, 7, 33);
  const double lr =
      ref.forward_backward(b.tokens.data(), b.targets.data(), b.weights.data(), b.B, b.T).loss;
  const double lc =
      cpu.forward_backward(b.tokens.data(), b.targets.data(), b.weights.data(), b.B, b.T).loss;
  EXPECT_NEAR(lc, lr, 1e-5 * std::abs(lr));
  std::vector<ParamRef<double>> pr = ref.params();
  std::vector<ParamRef<float>> pc = cpu.params();
  ASSERT_EQ(pr.size(), pc.size());
  for (size_t t = 0; t < pr.size(); ++t) {
    ASSERT_EQ(pr[t].name, pc[t].name);
    double err = 0, sc = 0;
    for (int64_t i = 0; i < pr[t].size; ++i) {
      err = std::max(err, std::abs(static_cast<double>(pc[t].grad[i]) - pr[t].grad[i]));
      sc = std::max(sc, std::abs(pr[t].grad[i]));
    }
    EXPECT_LE(err, kCpuVsRefTol * sc) << pr[t].name << " max |ref| " << sc;
  }
}

INSTANTIATE_TEST_SUITE_P(All,
                         CpuGrad,
                         ::testing::Combine(::testing::Values(0, 1, 2),
                                            ::testing::ValuesIn(kModes)),
                         arch_mode_name);

}  // namespace
}  // namespace lords::train::test
