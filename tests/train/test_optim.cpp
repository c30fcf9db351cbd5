// AdamW and the learning-rate schedule: two updates checked against the formulas evaluated by hand
// in fp64 (per-group lr multiplier and decoupled weight decay, bias correction at t = 1 and 2);
// schedule values at the warm-up, the peak, mid-decay and the floor; global-norm clipping; and
// resume: 10 steps, save, load into a fresh optimizer over fresh buffers, 10 more == 20 straight,
// bit for bit, through the stream and through named arrays.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <sstream>
#include <vector>

#include "lords/core/error.h"
#include "lords/train/adamw.h"
#include "lords/train/lr_schedule.h"

namespace lords::train {
namespace {

using Vec = std::vector<float>;

// Two groups as a QAT run has them: latent weights with weight decay, scale factors with a 4x lr.
struct Model {
  Vec w1, w2, s, gw1, gw2, gs;
  Model()
      : w1{0.5f, -1.0f, 2.0f},
        w2{0.25f, 0.75f},
        s{1.0f, -0.5f, 0.3f, 0.1f},
        gw1(3),
        gw2(2),
        gs(4) {}
  std::vector<ParamGroup> groups() {
    return {{"weights",
             {{"w1", w1.data(), gw1.data(), 3}, {"w2", w2.data(), gw2.data(), 2}},
             1.0f,
             0.1f},
            {"scales", {{"s", s.data(), gs.data(), 4}}, 4.0f, 0.0f}};
  }
  // A deterministic gradient of the parameters and the step: p - target plus a wobble.
  void make_grads(int64_t step) {
    auto fill = [step](const Vec& p, Vec& g, float target) {
      for (size_t i = 0; i < p.size(); ++i)
        g[i] =
            p[i] - target + 0.3f * std::sin(static_cast<float>(step * 7 + static_cast<int64_t>(i)));
    };
    fill(w1, gw1, 0.1f);
    fill(w2, gw2, -0.2f);
    fill(s, gs, 0.7f);
  }
  bool operator==(const Model& o) const {
    auto same = [](const Vec& a, const Vec& b) {
      return std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
    };
    return same(w1, o.w1) && same(w2, o.w2) && same(s, o.s);
  }
};

// One training step as a trainer runs it: gradients, clipping, scheduled lr, update.
void train_step(Model& m, AdamW& opt, const LrSchedule& sched) {
  m.make_grads(opt.steps());
  opt.clip_grad_norm(1.0);
  opt.step(lr_schedule_at(sched, opt.steps()));
}

TEST(AdamW, TwoStepsMatchHandComputedUpdate) {
  Model m;
  AdamW opt(m.groups(), {0.9f, 0.999f, 1e-8f});
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8, lr = 1e-2;
  // fp64 mirror of every parameter: value, lr multiplier, weight decay, m, v.
  struct P {
    float* p;
    const float* g;
    double value, lr_scale, wd, m = 0, v = 0;
  };
  std::vector<P> ps;
  for (size_t i = 0; i < 3; ++i) ps.push_back({&m.w1[i], &m.gw1[i], m.w1[i], 1.0, 0.1});
  for (size_t i = 0; i < 2; ++i) ps.push_back({&m.w2[i], &m.gw2[i], m.w2[i], 1.0, 0.1});
  for (size_t i = 0; i < 4; ++i) ps.push_back({&m.s[i], &m.gs[i], m.s[i], 4.0, 0.0});
  for (int t = 1; t <= 2; ++t) {
    m.make_grads(t);
    opt.step(static_cast<float>(lr));
    for (P& p : ps) {
      const double g = *p.g, lr_g = lr * p.lr_scale;
      p.m = b1 * p.m + (1 - b1) * g;
      p.v = b2 * p.v + (1 - b2) * g * g;
      const double m_hat = p.m / (1 - std::pow(b1, t)), v_hat = p.v / (1 - std::pow(b2, t));
      const double before = p.value;
      p.value = p.value * (1 - lr_g * p.wd) - lr_g * m_hat / (std::sqrt(v_hat) + eps);
      // The change is ~ lr_g; fp32 rounds the value to ~6e-8 and the update to ~1e-6 of itself.
      EXPECT_NEAR(*p.p, p.value, 1e-6 * std::fabs(p.value - before) + 2e-7 * std::fabs(p.value))
          << "step " << t << " grad " << g;
    }
  }
  EXPECT_EQ(opt.steps(), 2);
}

TEST(LrSchedule, WarmupThenCosineToFloor) {
  const LrSchedule s{1e-3f, 10, 110, 0.1f};
  EXPECT_NO_THROW(lr_schedule_check(s));
  EXPECT_FLOAT_EQ(lr_schedule_at(s, 0), 1e-4f);  // (0 + 1) / 10 of the peak
  EXPECT_FLOAT_EQ(lr_schedule_at(s, 4), 5e-4f);
  EXPECT_FLOAT_EQ(lr_schedule_at(s, 9), 1e-3f);   // end of warm-up: the peak
  EXPECT_FLOAT_EQ(lr_schedule_at(s, 10), 1e-3f);  // cosine starts at the peak
  EXPECT_FLOAT_EQ(lr_schedule_at(s, 60), 1e-3f * (0.1f + 0.9f * 0.5f));  // half way
  EXPECT_FLOAT_EQ(lr_schedule_at(s, 110), 1e-4f);                        // the floor
  EXPECT_FLOAT_EQ(lr_schedule_at(s, 1000), 1e-4f);
  // The last update (progress 99/100) sits just above the floor: 0.1 + 0.9 (1 + cos(0.99 pi)) / 2.
  EXPECT_FLOAT_EQ(
      lr_schedule_at(s, 109),
      static_cast<float>(1e-3 * (0.1 + 0.45 * (1 + std::cos(0.99 * std::numbers::pi)))));
  for (int64_t t = 10; t < 120; ++t) EXPECT_LE(lr_schedule_at(s, t + 1), lr_schedule_at(s, t)) << t;
  EXPECT_FLOAT_EQ(lr_schedule_at({2e-5f, 0, 100, 0.0f}, 0), 2e-5f);  // no warm-up
  const LrSchedule flat{2e-5f, 375, 1250, 1.0f};                     // warm-up then constant
  EXPECT_FLOAT_EQ(lr_schedule_at(flat, 800), 2e-5f);
  EXPECT_THROW(lr_schedule_check({1e-3f, 10, 10, 0.0f}), Error);
  EXPECT_THROW(lr_schedule_check({1e-3f, -1, 10, 0.0f}), Error);
  EXPECT_THROW(lr_schedule_check({1e-3f, 0, 10, 1.5f}), Error);
  EXPECT_THROW(lr_schedule_check({0.0f, 0, 10, 0.0f}), Error);
}

TEST(AdamW, ClipGradNormScalesAllGroups) {
  Model m;
  AdamW opt(m.groups());
  auto set = [&] {  // global norm sqrt(9 + 16 + 144) = 13
    m.gw1 = {3.0f, 0.0f, 0.0f};
    m.gw2 = {0.0f, 4.0f};
    m.gs = {0.0f, 0.0f, 12.0f, 0.0f};
  };
  set();
  EXPECT_DOUBLE_EQ(opt.grad_norm(), 13.0);
  EXPECT_DOUBLE_EQ(opt.clip_grad_norm(20.0), 13.0);  // below the limit: untouched
  EXPECT_EQ(m.gs[2], 12.0f);
  EXPECT_DOUBLE_EQ(opt.clip_grad_norm(6.5), 13.0);
  const float coef = static_cast<float>(6.5 / (13.0 + 1e-6));
  EXPECT_EQ(m.gw1[0], 3.0f * coef);
  EXPECT_EQ(m.gw2[1], 4.0f * coef);
  EXPECT_EQ(m.gs[2], 12.0f * coef);
  EXPECT_NEAR(opt.grad_norm(), 6.5, 1e-5);
  set();
  m.gw2[0] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(std::isfinite(opt.clip_grad_norm(1.0)));
  EXPECT_EQ(m.gs[2], 12.0f) << "a non-finite norm leaves the gradients alone";
}

const LrSchedule kSched{1e-2f, 5, 20, 0.1f};

TEST(AdamW, ResumeFromStreamIsBitExact) {
  Model straight;
  AdamW opt_straight(straight.groups(), {});
  for (int i = 0; i < 20; ++i) train_step(straight, opt_straight, kSched);

  Model first;
  AdamW opt_first(first.groups(), {});
  for (int i = 0; i < 10; ++i) train_step(first, opt_first, kSched);
  std::stringstream file;
  opt_first.save(file);
  Model resumed = first;  // the checkpointed weights, in new buffers
  AdamW opt_resumed(resumed.groups(), {});
  opt_resumed.load(file);
  EXPECT_EQ(opt_resumed.steps(), 10);
  for (int i = 0; i < 10; ++i) train_step(resumed, opt_resumed, kSched);

  EXPECT_TRUE(resumed == straight);
  EXPECT_EQ(opt_resumed.state_arrays(), opt_straight.state_arrays());
  EXPECT_FALSE(first == straight) << "the second half must have changed something";
}

TEST(AdamW, ResumeFromNamedArraysIsBitExact) {
  Model straight;
  AdamW opt_straight(straight.groups(), {});
  for (int i = 0; i < 20; ++i) train_step(straight, opt_straight, kSched);

  Model first;
  AdamW opt_first(first.groups(), {});
  for (int i = 0; i < 10; ++i) train_step(first, opt_first, kSched);
  NamedArrays arrays = opt_first.state_arrays();
  EXPECT_EQ(arrays.count("optim.step"), 1u);
  EXPECT_EQ(arrays.at("optim.weights.w1.exp_avg").size(), 3u);
  EXPECT_EQ(arrays.at("optim.scales.s.exp_avg_sq").size(), 4u);
  arrays["model.w1"] = first.w1;  // a tensor file holds weights too: ignored
  Model resumed = first;
  AdamW opt_resumed(resumed.groups(), {});
  opt_resumed.load_state_arrays(arrays);
  for (int i = 0; i < 10; ++i) train_step(resumed, opt_resumed, kSched);
  EXPECT_TRUE(resumed == straight);
}

TEST(AdamW, LoadRejectsMismatchedStateAndKeepsItsOwn) {
  Model m;
  AdamW opt(m.groups(), {});
  std::stringstream good;
  opt.save(good);
  const std::string bytes = good.str();

  Vec big(5), big_g(5);
  std::vector<ParamGroup> other = m.groups();
  other[0].tensors[1] = {"w2", big.data(), big_g.data(), 5};  // same key, another size
  AdamW mismatched(other, {});
  mismatched.step(1e-3f);
  std::stringstream in1(bytes);
  EXPECT_THROW(mismatched.load(in1), Error);
  EXPECT_EQ(mismatched.steps(), 1) << "a failed load changes nothing";

  std::stringstream truncated(bytes.substr(0, bytes.size() - 3));
  AdamW fresh(m.groups(), {});
  EXPECT_THROW(fresh.load(truncated), Error);
  std::stringstream bad_magic("NOTADAMW" + bytes.substr(8));
  EXPECT_THROW(fresh.load(bad_magic), Error);

  NamedArrays arrays = opt.state_arrays();
  arrays.erase("optim.scales.s.exp_avg");
  EXPECT_THROW(fresh.load_state_arrays(arrays), Error);
  arrays = opt.state_arrays();
  arrays["optim.step"] = {2.5f};
  EXPECT_THROW(fresh.load_state_arrays(arrays), Error);
}

TEST(AdamW, RejectsBadGroups) {
  Model m;
  std::vector<ParamGroup> g = m.groups();
  g[1].name = "weights";
  EXPECT_THROW(AdamW{g}, Error);
  g = m.groups();
  g[0].tensors[1].name = "w1";
  EXPECT_THROW(AdamW{g}, Error);
  g = m.groups();
  g[0].tensors[0].grad = nullptr;
  EXPECT_THROW(AdamW{g}, Error);
  g = m.groups();
  g[1].tensors[0].size = 0;
  EXPECT_THROW(AdamW{g}, Error);
  EXPECT_THROW(AdamW(m.groups(), {1.0f, 0.999f, 1e-8f}), Error);
}

}  // namespace
}  // namespace lords::train
