// Fixed-length training sequences, the train/held-out split and the shuffled batch order.
//   SequenceSet  n sequences of exactly T positions: tokens[t] is the input, targets[t] the next
//                token (-1 at padding, which cross_entropy_fwd_bwd ignores), weights[t] its loss
//                weight (0 on prompt and padding).
//   split_by_key deterministic for (keys, fraction, seed), independent of the order of the keys and
//                of T: the distinct keys are sorted, shuffled by the seed, and the first
//                round(fraction * n_keys) are held out (at least one when fraction > 0, never all).
//   BatchIterator epoch e visits a permutation of the n sequences drawn from (seed, e) alone, in
//                ceil(n / B) batches; seek({e, b}) resumes exactly at batch b of epoch e.
// Randomness is std::mt19937_64 (fully specified by the standard) with our own bounded draws, so
// orders are the same on every platform and standard library.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lords/train/data_format.h"

namespace lords::train {

struct SequenceStats {
  int64_t items = 0;        // examples or text windows offered
  int64_t sequences = 0;    // kept
  int64_t truncated = 0;    // longer than T + 1 tokens: the end was cut
  int64_t dropped = 0;      // no target with weight > 0 left within T positions
  int64_t loss_tokens = 0;  // positions with weight > 0
  int64_t pad_tokens = 0;   // padded positions
};

struct SequenceSet {
  int64_t T = 0;
  int32_t pad_id = 0;            // input id at padded positions
  std::vector<int32_t> tokens;   // (n, T)
  std::vector<int32_t> targets;  // (n, T) next token, -1 at padding
  std::vector<float> weights;    // (n, T) 0 or 1
  SequenceStats stats;

  int64_t size() const { return T > 0 ? static_cast<int64_t>(tokens.size()) / T : 0; }
};

// An empty set of length T (>= 1) padding with pad_id.
SequenceSet make_sequence_set(int64_t T, int32_t pad_id);
// Appends item as one sequence: its first T + 1 tokens give T (input, target) pairs, the rest of
// the T positions are padding. Items without a weighted target in reach are dropped (counted).
void append_item(SequenceSet* set, const TokenItem& item);
// The sequences rows, in that order (stats recounted for the subset's sequences).
SequenceSet select_rows(const SequenceSet& set, const std::vector<int64_t>& rows);

struct SplitIndices {
  std::vector<int64_t> train;    // indices into keys, ascending
  std::vector<int64_t> heldout;  // ascending
};
// Items with equal keys land on the same side. fraction in [0, 1); Error{Usage} otherwise.
SplitIndices split_by_key(const std::vector<std::string>& keys, double fraction, uint64_t seed);

struct BatchPosition {
  int64_t epoch = 0;
  int64_t batch = 0;  // batch index within the epoch
  bool operator==(const BatchPosition&) const = default;
};

class BatchIterator {
 public:
  // n sequences (>= 1) in batches of batch_size (>= 1); Error{Usage} otherwise.
  BatchIterator(int64_t n, int64_t batch_size, uint64_t seed);

  int64_t batches_per_epoch() const { return (n_ + batch_size_ - 1) / batch_size_; }
  BatchPosition position() const { return pos_; }  // the batch next() returns
  // Error{Usage} for a negative epoch or a batch outside [0, batches_per_epoch()).
  void seek(BatchPosition pos);
  // Sequence indices of the batch at position() (batch_size of them, fewer for the last batch of an
  // epoch when batch_size does not divide n), then advances, into the next epoch after the last.
  std::vector<int64_t> next();

 private:
  void shuffle_for(int64_t epoch);

  int64_t n_, batch_size_;
  uint64_t seed_;
  BatchPosition pos_;
  int64_t perm_epoch_ = -1;    // the epoch perm_ belongs to
  std::vector<int64_t> perm_;  // (n)
};

struct Batch {
  int64_t B = 0, T = 0;
  int64_t rows = 0;              // real sequences; rows [rows, B) are padding with weight 0
  std::vector<int32_t> tokens;   // (B, T)
  std::vector<int32_t> targets;  // (B, T)
  std::vector<float> weights;    // (B, T)
};
// Copies rows of set into a batch of B >= rows.size() sequences, so every step has the same shape.
void gather_batch(Batch* out, const SequenceSet& set, const std::vector<int64_t>& rows, int64_t B);

}  // namespace lords::train
