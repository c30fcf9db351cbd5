#include "lords/runtime/calibrate.h"

#include <cblas.h>

#include <array>

#include "lords/core/error.h"
#include "lords/core/progress.h"

namespace lords::runtime {

engine::CalibrationStats collect_calibration(LlamaModel& model, const std::vector<int32_t>& tokens,
                                             const std::string& text_name, const CalibrationOptions& opt) {
  const model::ModelConfig& c = model.config();
  LORDS_CHECK(opt.n_ctx >= 1 && opt.n_ctx <= model.max_context(), ErrorKind::Usage,
              "--calib-ctx must be in [1, {}], got {}", model.max_context(), opt.n_ctx);
  const int64_t total = std::min<int64_t>(static_cast<int64_t>(tokens.size()), opt.max_tokens);
  LORDS_CHECK(total >= opt.n_ctx, ErrorKind::Usage, "calibration text {} has {} tokens, fewer than one chunk of {}",
              text_name, tokens.size(), opt.n_ctx);
  const int64_t chunks = total / opt.n_ctx;
  // sums[layer][input] = sum over tokens of x x^T, upper triangle, double.
  constexpr int kInputs = 4;
  const std::array<int64_t, kInputs> widths = {c.hidden, c.n_head * c.head_dim, c.hidden, c.intermediate};
  std::vector<std::array<std::vector<double>, kInputs>> sums(static_cast<size_t>(c.n_layer));
  for (auto& layer : sums)
    for (int i = 0; i < kInputs; ++i) layer[static_cast<size_t>(i)].assign(static_cast<size_t>(widths[static_cast<size_t>(i)] * widths[static_cast<size_t>(i)]), 0.0);
  std::vector<float> chunk_sum;
  model.set_input_observer([&](int64_t layer, LinearInput which, const float* X, int64_t T, int64_t K) {
    // One float syrk per chunk (T <= n_ctx rows), then accumulated in double across chunks.
    chunk_sum.assign(static_cast<size_t>(K * K), 0.0f);
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<blasint>(K), static_cast<blasint>(T), 1.0f, X,
                static_cast<blasint>(K), 0.0f, chunk_sum.data(), static_cast<blasint>(K));
    std::vector<double>& H = sums[static_cast<size_t>(layer)][static_cast<size_t>(which)];
    for (int64_t i = 0; i < K; ++i)
      for (int64_t j = i; j < K; ++j) H[static_cast<size_t>(i * K + j)] += chunk_sum[static_cast<size_t>(i * K + j)];
  });
  KvCache cache = model.make_cache(opt.n_ctx);
  std::vector<float> logits(static_cast<size_t>(model.vocab()));
  Progress progress("calibrate", chunks, opt.progress);
  for (int64_t ch = 0; ch < chunks; ++ch) {
    cache.reset();
    model.forward(tokens.data() + ch * opt.n_ctx, opt.n_ctx, cache, logits.data(), LogitsMode::Last);
    progress.tick(fmt::format("{} tokens", (ch + 1) * opt.n_ctx));
  }
  progress.finish();
  model.set_input_observer(nullptr);

  engine::CalibrationStats stats;
  stats.text = text_name;
  stats.tokens = chunks * opt.n_ctx;
  const double inv = 1.0 / static_cast<double>(stats.tokens);
  static const std::array<std::vector<const char*>, kInputs> kConsumers = {
      std::vector<const char*>{"attn_q", "attn_k", "attn_v"}, std::vector<const char*>{"attn_output"},
      std::vector<const char*>{"ffn_gate", "ffn_up"}, std::vector<const char*>{"ffn_down"}};
  for (int64_t l = 0; l < c.n_layer; ++l)
    for (int i = 0; i < kInputs; ++i) {
      std::vector<double>& H = sums[static_cast<size_t>(l)][static_cast<size_t>(i)];
      const int64_t K = widths[static_cast<size_t>(i)];
      for (int64_t a = 0; a < K; ++a)
        for (int64_t b = a; b < K; ++b) {
          const double v = H[static_cast<size_t>(a * K + b)] * inv;
          H[static_cast<size_t>(a * K + b)] = H[static_cast<size_t>(b * K + a)] = v;
        }
      auto shared = std::make_shared<const std::vector<double>>(std::move(H));
      for (const char* name : kConsumers[static_cast<size_t>(i)])
        stats.hessians[fmt::format("blk.{}.{}.weight", l, name)] = shared;
    }
  return stats;
}

}  // namespace lords::runtime
