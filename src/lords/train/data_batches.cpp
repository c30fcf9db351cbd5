#include "lords/train/data_batches.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>

#include "lords/core/error.h"

namespace lords::train {
namespace {

// splitmix64 finalizer: spreads nearby seeds (0, 1, 2 ...) over the whole state space.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in [0, n) by rejection (std::uniform_int_distribution differs between libraries).
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit =
      std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
  uint64_t x = rng();
  while (x >= limit) x = rng();
  return x % n;
}

template <class T>
void shuffle(std::vector<T>* v, uint64_t seed) {
  std::mt19937_64 rng(mix(seed));
  for (size_t i = v->size(); i > 1; --i) std::swap((*v)[i - 1], (*v)[uniform_below(rng, i)]);
}

void count_row(SequenceStats* s, const float* w, const int32_t* targets, int64_t T) {
  for (int64_t t = 0; t < T; ++t) {
    s->loss_tokens += w[t] > 0 ? 1 : 0;
    s->pad_tokens += targets[t] < 0 ? 1 : 0;
  }
}

}  // namespace

SequenceSet make_sequence_set(int64_t T, int32_t pad_id) {
  LORDS_CHECK(T >= 1, ErrorKind::Usage, "sequence length must be >= 1, got {}", T);
  SequenceSet s;
  s.T = T;
  s.pad_id = pad_id;
  return s;
}

void append_item(SequenceSet* set, const TokenItem& item) {
  LORDS_ASSERT(item.ids.size() == item.weights.size() && set->T >= 1);
  const int64_t T = set->T;
  const int64_t L = static_cast<int64_t>(item.ids.size());
  const int64_t real = std::min(L - 1, T);  // positions with a target
  SequenceStats& st = set->stats;
  ++st.items;
  bool any = false;
  for (int64_t t = 0; t < real; ++t) any = any || item.weights[static_cast<size_t>(t + 1)] > 0;
  if (!any) {
    ++st.dropped;
    return;
  }
  st.truncated += L > T + 1 ? 1 : 0;
  ++st.sequences;
  for (int64_t t = 0; t < T; ++t) {
    const bool pad = t >= real;
    set->tokens.push_back(t < L ? item.ids[static_cast<size_t>(t)] : set->pad_id);
    set->targets.push_back(pad ? -1 : item.ids[static_cast<size_t>(t + 1)]);
    set->weights.push_back(pad ? 0.0f : item.weights[static_cast<size_t>(t + 1)]);
  }
  count_row(&st,
            set->weights.data() + (st.sequences - 1) * T,
            set->targets.data() + (st.sequences - 1) * T,
            T);
}

SequenceSet select_rows(const SequenceSet& set, const std::vector<int64_t>& rows) {
  SequenceSet out = make_sequence_set(set.T, set.pad_id);
  const int64_t T = set.T;
  for (int64_t r : rows) {
    LORDS_ASSERT(r >= 0 && r < set.size());
    out.tokens.insert(
        out.tokens.end(), set.tokens.begin() + r * T, set.tokens.begin() + (r + 1) * T);
    out.targets.insert(
        out.targets.end(), set.targets.begin() + r * T, set.targets.begin() + (r + 1) * T);
    out.weights.insert(
        out.weights.end(), set.weights.begin() + r * T, set.weights.begin() + (r + 1) * T);
    count_row(&out.stats, set.weights.data() + r * T, set.targets.data() + r * T, T);
  }
  out.stats.items = out.stats.sequences = static_cast<int64_t>(rows.size());
  return out;
}

SplitIndices split_by_key(const std::vector<std::string>& keys, double fraction, uint64_t seed) {
  LORDS_CHECK(fraction >= 0.0 && fraction < 1.0,
              ErrorKind::Usage,
              "held-out fraction must be in [0, 1), got {}",
              fraction);
  std::vector<std::string> distinct = keys;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  const int64_t n_keys = static_cast<int64_t>(distinct.size());
  int64_t n_held = 0;
  if (fraction > 0) {
    LORDS_CHECK(n_keys >= 2,
                ErrorKind::Usage,
                "cannot hold out a fraction of {} split unit(s): nothing would be left to train on",
                n_keys);
    n_held =
        std::clamp<int64_t>(std::llround(fraction * static_cast<double>(n_keys)), 1, n_keys - 1);
  }
  shuffle(&distinct, seed);
  std::map<std::string, bool> held;
  for (int64_t i = 0; i < n_keys; ++i) held[distinct[static_cast<size_t>(i)]] = i < n_held;
  SplitIndices out;
  for (size_t i = 0; i < keys.size(); ++i)
    (held[keys[i]] ? out.heldout : out.train).push_back(static_cast<int64_t>(i));
  return out;
}

BatchIterator::BatchIterator(int64_t n, int64_t batch_size, uint64_t seed)
    : n_(n), batch_size_(batch_size), seed_(seed) {
  LORDS_CHECK(n >= 1, ErrorKind::Usage, "no training sequences to iterate over");
  LORDS_CHECK(batch_size >= 1, ErrorKind::Usage, "batch size must be >= 1, got {}", batch_size);
}

void BatchIterator::seek(BatchPosition pos) {
  LORDS_CHECK(pos.epoch >= 0 && pos.batch >= 0 && pos.batch < batches_per_epoch(),
              ErrorKind::Usage,
              "batch position (epoch {}, batch {}) is outside the data: {} batches per epoch",
              pos.epoch,
              pos.batch,
              batches_per_epoch());
  pos_ = pos;
}

void BatchIterator::shuffle_for(int64_t epoch) {
  if (perm_epoch_ == epoch) return;
  perm_.resize(static_cast<size_t>(n_));
  std::iota(perm_.begin(), perm_.end(), int64_t{0});
  shuffle(&perm_, mix(seed_) ^ static_cast<uint64_t>(epoch));
  perm_epoch_ = epoch;
}

std::vector<int64_t> BatchIterator::next() {
  shuffle_for(pos_.epoch);
  const int64_t begin = pos_.batch * batch_size_;
  const int64_t end = std::min(n_, begin + batch_size_);
  std::vector<int64_t> rows(perm_.begin() + begin, perm_.begin() + end);
  if (++pos_.batch == batches_per_epoch()) pos_ = {pos_.epoch + 1, 0};
  return rows;
}

void gather_batch(Batch* out, const SequenceSet& set, const std::vector<int64_t>& rows, int64_t B) {
  const int64_t n = static_cast<int64_t>(rows.size());
  LORDS_CHECK(
      B >= n && B >= 1, ErrorKind::Usage, "batch of {} rows does not fit batch size {}", n, B);
  const int64_t T = set.T;
  out->B = B;
  out->T = T;
  out->rows = n;
  out->tokens.assign(static_cast<size_t>(B * T), set.pad_id);
  out->targets.assign(static_cast<size_t>(B * T), -1);
  out->weights.assign(static_cast<size_t>(B * T), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = rows[static_cast<size_t>(i)];
    LORDS_ASSERT(r >= 0 && r < set.size());
    std::copy_n(set.tokens.begin() + r * T, T, out->tokens.begin() + i * T);
    std::copy_n(set.targets.begin() + r * T, T, out->targets.begin() + i * T);
    std::copy_n(set.weights.begin() + r * T, T, out->weights.begin() + i * T);
  }
}

}  // namespace lords::train
