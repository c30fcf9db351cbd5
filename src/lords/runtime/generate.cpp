#include "lords/runtime/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "lords/core/error.h"

namespace lords::runtime {
namespace {

// splitmix64: small, seedable, and identical on every platform (std distributions are not).
uint64_t next_u64(uint64_t* s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double uniform01(uint64_t* s) { return static_cast<double>(next_u64(s) >> 11) * 0x1.0p-53; }

}  // namespace

int32_t sample_token(const float* logits, int64_t V, const SamplingOptions& opt, uint64_t* rng) {
  LORDS_CHECK(opt.temperature >= 0 && opt.top_p > 0 && opt.top_p <= 1, ErrorKind::Usage,
              "--temp must be >= 0 and --top-p in (0, 1]");
  if (opt.temperature == 0.0f) return static_cast<int32_t>(std::max_element(logits, logits + V) - logits);
  const float mx = *std::max_element(logits, logits + V);
  std::vector<double> p(static_cast<size_t>(V));
  double sum = 0;
  for (int64_t v = 0; v < V; ++v) sum += p[static_cast<size_t>(v)] = std::exp((logits[v] - mx) / opt.temperature);
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return p[static_cast<size_t>(a)] > p[static_cast<size_t>(b)] || (p[static_cast<size_t>(a)] == p[static_cast<size_t>(b)] && a < b);
  });
  // Smallest prefix of the sorted tokens whose mass reaches top_p, then sample within it.
  double kept = 0;
  size_t n = 0;
  while (n < order.size() && kept < opt.top_p * sum) kept += p[static_cast<size_t>(order[n++])];
  double u = uniform01(rng) * kept;
  for (size_t i = 0; i < n; ++i) {
    u -= p[static_cast<size_t>(order[i])];
    if (u <= 0) return order[i];
  }
  return order[n - 1];
}

GenerateResult generate(CausalLM& model, const std::vector<int32_t>& prompt, const GenerateOptions& opt,
                        const std::function<void(int32_t)>& on_token) {
  LORDS_CHECK(!prompt.empty(), ErrorKind::Usage, "the prompt is empty");
  LORDS_CHECK(opt.max_new_tokens >= 0, ErrorKind::Usage, "-n must be >= 0");
  const int64_t total = static_cast<int64_t>(prompt.size()) + opt.max_new_tokens;
  LORDS_CHECK(total <= model.max_context(), ErrorKind::Usage,
              "prompt ({} tokens) + {} new tokens exceeds the model's maximum context of {} tokens", prompt.size(),
              opt.max_new_tokens, model.max_context());
  const std::unique_ptr<KvCacheBase> cache = model.new_cache(total);
  std::vector<float> logits(static_cast<size_t>(model.vocab()));
  uint64_t rng = opt.sampling.seed;
  GenerateResult r;
  auto t0 = std::chrono::steady_clock::now();
  model.forward(prompt.data(), static_cast<int64_t>(prompt.size()), *cache, logits.data(), LogitsMode::Last);
  auto t1 = std::chrono::steady_clock::now();
  r.prompt_seconds = std::chrono::duration<double>(t1 - t0).count();
  for (int64_t i = 0; i < opt.max_new_tokens; ++i) {
    const int32_t tok = sample_token(logits.data(), model.vocab(), opt.sampling, &rng);
    r.tokens.push_back(tok);
    if (on_token) on_token(tok);
    if ((opt.stop_token && tok == *opt.stop_token) || i + 1 == opt.max_new_tokens) break;
    model.forward(&tok, 1, *cache, logits.data(), LogitsMode::Last);
  }
  r.gen_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  return r;
}

}  // namespace lords::runtime
