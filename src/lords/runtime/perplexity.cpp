#include "lords/runtime/perplexity.h"

#include <chrono>
#include <cmath>

#include "lords/core/error.h"
#include "lords/core/progress.h"

namespace lords::runtime {
namespace {

// log softmax of one logits row at `target`, and the row's log-sum-exp (double: V = 50k terms).
double log_sum_exp(const float* logits, int64_t V) {
  float mx = logits[0];
  for (int64_t v = 1; v < V; ++v) mx = std::max(mx, logits[v]);
  double s = 0;
  for (int64_t v = 0; v < V; ++v) s += std::exp(static_cast<double>(logits[v]) - mx);
  return mx + std::log(s);
}

int64_t argmax(const float* x, int64_t V) {
  int64_t best = 0;
  for (int64_t v = 1; v < V; ++v)
    if (x[v] > x[best]) best = v;
  return best;
}

// KL(p || q) for rows of logits p (base) and q (model).
double kl_row(const float* p_logits, double p_lse, const float* q_logits, double q_lse, int64_t V) {
  double kl = 0;
  for (int64_t v = 0; v < V; ++v) {
    const double lp = p_logits[v] - p_lse, lq = q_logits[v] - q_lse;
    kl += std::exp(lp) * (lp - lq);
  }
  return kl;
}

struct Mean {  // running mean and standard error
  double sum = 0, sum_sq = 0;
  int64_t n = 0;
  void add(double x) { sum += x, sum_sq += x * x, ++n; }
  double mean() const { return n > 0 ? sum / static_cast<double>(n) : 0; }
  double se() const {
    if (n < 2) return 0;
    const double m = mean(), var = (sum_sq / static_cast<double>(n) - m * m) * static_cast<double>(n) / static_cast<double>(n - 1);
    return std::sqrt(std::max(var, 0.0) / static_cast<double>(n));
  }
};

}  // namespace

double PerplexityResult::ppl() const { return std::exp(nll); }

nlohmann::json PerplexityResult::to_json() const {
  nlohmann::json j{{"chunks", chunks}, {"scored_tokens", scored}, {"nll", nll}, {"nll_se", nll_se},
                   {"ppl", ppl()}, {"seconds", seconds}};
  if (has_kl) j["kl"] = kl, j["kl_se"] = kl_se, j["top1_agreement"] = top1;
  return j;
}

PerplexityResult perplexity(CausalLM& model, const std::vector<int32_t>& tokens, const PerplexityOptions& opt,
                            CausalLM* base) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t n_ctx = opt.n_ctx, V = model.vocab();
  LORDS_CHECK(n_ctx >= 8, ErrorKind::Usage, "--ctx must be at least 8, got {}", n_ctx);
  LORDS_CHECK(n_ctx <= model.max_context(), ErrorKind::Usage,
              "--ctx {} exceeds the model's maximum context of {} tokens", n_ctx, model.max_context());
  int64_t chunks = static_cast<int64_t>(tokens.size()) / n_ctx;
  LORDS_CHECK(chunks >= 1, ErrorKind::Usage, "the text has {} tokens, fewer than one chunk of {}", tokens.size(), n_ctx);
  if (opt.max_chunks > 0) chunks = std::min(chunks, opt.max_chunks);
  if (base != nullptr)
    LORDS_CHECK(base->vocab() == V, ErrorKind::Usage, "--kl-base has vocabulary {}, the model {}", base->vocab(), V);
  const int64_t first = opt.protocol == PplProtocol::SecondHalf ? n_ctx / 2 : 0;
  const std::unique_ptr<KvCacheBase> cache = model.new_cache(n_ctx);
  std::unique_ptr<KvCacheBase> base_cache;
  if (base != nullptr) base_cache = base->new_cache(n_ctx);
  std::vector<float> logits(static_cast<size_t>(n_ctx * V)), base_logits;
  if (base != nullptr) base_logits.resize(logits.size());
  Mean nll, kl;
  int64_t agree = 0;
  Progress progress("perplexity", chunks, opt.progress);
  for (int64_t c = 0; c < chunks; ++c) {
    std::vector<int32_t> chunk(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx);
    if (opt.bos) chunk[0] = *opt.bos;
    cache->reset();
    model.forward(chunk.data(), n_ctx, *cache, logits.data(), LogitsMode::All);
    if (base != nullptr) {
      base_cache->reset();
      base->forward(chunk.data(), n_ctx, *base_cache, base_logits.data(), LogitsMode::All);
    }
    // Row j predicts token j + 1.
    for (int64_t j = first; j < n_ctx - 1; ++j) {
      const float* row = &logits[static_cast<size_t>(j * V)];
      const double lse = log_sum_exp(row, V);
      nll.add(lse - row[chunk[static_cast<size_t>(j + 1)]]);
      if (base != nullptr) {
        const float* brow = &base_logits[static_cast<size_t>(j * V)];
        kl.add(kl_row(brow, log_sum_exp(brow, V), row, lse, V));
        agree += argmax(row, V) == argmax(brow, V);
      }
    }
    progress.tick(fmt::format("ppl {:.4f}", std::exp(nll.mean())));
  }
  progress.finish();
  PerplexityResult r;
  r.chunks = chunks;
  r.scored = nll.n;
  r.nll = nll.mean();
  r.nll_se = nll.se();
  if (base != nullptr) {
    r.has_kl = true;
    r.kl = kl.mean();
    r.kl_se = kl.se();
    r.top1 = static_cast<double>(agree) / static_cast<double>(std::max<int64_t>(1, kl.n));
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace lords::runtime
