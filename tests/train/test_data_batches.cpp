// Sequences of exactly T (padding and truncation), the deterministic split, the batch iterator and
// its resume position, and load_training_data end to end on files the test writes.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <set>

#include "common/temp_dir.h"
#include "lords/core/error.h"
#include "lords/train/data_load.h"

namespace lords::train {
namespace {

TokenItem item_of(std::vector<int32_t> ids, std::vector<float> w) {
  return {std::move(ids), std::move(w)};
}

TEST(DataBatches, PadTruncateAndDrop) {
  SequenceSet s = make_sequence_set(4, 99);
  append_item(&s, item_of({1, 2, 3}, {0, 0, 1}));                          // short: padded
  append_item(&s, item_of({1, 2, 3, 4, 5, 6, 7}, {0, 0, 1, 1, 1, 1, 1}));  // long: truncated
  append_item(&s, item_of({1, 2, 3, 4, 5, 6}, {0, 0, 0, 0, 0, 1}));  // response beyond T: dropped
  append_item(&s, item_of({1, 2, 3, 4, 5}, {0, 0, 0, 0, 1}));  // exactly T + 1 tokens: kept whole
  ASSERT_EQ(s.size(), 3);
  EXPECT_EQ(s.tokens, (std::vector<int32_t>{1, 2, 3, 99, 1, 2, 3, 4, 1, 2, 3, 4}));
  EXPECT_EQ(s.targets, (std::vector<int32_t>{2, 3, -1, -1, 2, 3, 4, 5, 2, 3, 4, 5}));
  EXPECT_EQ(s.weights, (std::vector<float>{0, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1}));
  EXPECT_EQ(s.stats.items, 4);
  EXPECT_EQ(s.stats.sequences, 3);
  EXPECT_EQ(s.stats.truncated, 1);
  EXPECT_EQ(s.stats.dropped, 1);
  EXPECT_EQ(s.stats.loss_tokens, 5);
  EXPECT_EQ(s.stats.pad_tokens, 2);
  const SequenceSet sub = select_rows(s, {2, 0});
  EXPECT_EQ(sub.tokens, (std::vector<int32_t>{1, 2, 3, 4, 1, 2, 3, 99}));
  EXPECT_EQ(sub.stats.loss_tokens, 2);
  Batch b;
  gather_batch(&b, s, {1}, 2);
  EXPECT_EQ(b.rows, 1);
  EXPECT_EQ(b.targets, (std::vector<int32_t>{2, 3, 4, 5, -1, -1, -1, -1}));
  EXPECT_EQ(b.tokens[5], 99);
  EXPECT_EQ(b.weights[7], 0.0f);
  EXPECT_THROW(gather_batch(&b, s, {0, 1, 2}, 2), Error);
}

TEST(DataBatches, SplitIsDeterministicAndKeepsKeysTogether) {
  std::vector<std::string> keys;
  for (int i = 0; i < 200; ++i) keys.push_back(std::to_string(i % 50));  // 50 groups of 4
  const SplitIndices a = split_by_key(keys, 0.2, 7);
  const SplitIndices b = split_by_key(keys, 0.2, 7);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.heldout, b.heldout);
  EXPECT_EQ(a.heldout.size(), 40u);  // 10 of 50 groups, 4 items each
  EXPECT_EQ(a.train.size() + a.heldout.size(), keys.size());
  std::set<std::string> held_keys;
  for (int64_t i : a.heldout) held_keys.insert(keys[static_cast<size_t>(i)]);
  for (int64_t i : a.train) EXPECT_FALSE(held_keys.count(keys[static_cast<size_t>(i)])) << i;
  // The order of the items does not matter: the same keys are held out.
  std::vector<std::string> reversed(keys.rbegin(), keys.rend());
  std::set<std::string> held_rev;
  for (int64_t i : split_by_key(reversed, 0.2, 7).heldout)
    held_rev.insert(reversed[static_cast<size_t>(i)]);
  EXPECT_EQ(held_rev, held_keys);
  EXPECT_NE(split_by_key(keys, 0.2, 8).heldout, a.heldout);
  EXPECT_TRUE(split_by_key(keys, 0.0, 7).heldout.empty());
  EXPECT_EQ(split_by_key({"a", "b", "c"}, 0.01, 1).heldout.size(), 1u);  // at least one
  EXPECT_EQ(split_by_key({"a", "b", "c"}, 0.99, 1).train.size(), 1u);    // never all
  EXPECT_THROW(split_by_key(keys, 1.0, 7), Error);
  EXPECT_THROW(split_by_key({"a", "a"}, 0.5, 7), Error);
}

TEST(DataBatches, IteratorShufflesPerEpochAndResumesExactly) {
  const int64_t n = 23, B = 5;
  BatchIterator it(n, B, 42);
  EXPECT_EQ(it.batches_per_epoch(), 5);
  std::vector<std::vector<int64_t>> seen;
  std::vector<BatchPosition> at;
  for (int step = 0; step < 13; ++step) {
    at.push_back(it.position());
    seen.push_back(it.next());
  }
  EXPECT_EQ(at[5], (BatchPosition{1, 0}));
  EXPECT_EQ(it.position(), (BatchPosition{2, 3}));
  EXPECT_EQ(seen[4].size(), 3u);  // 23 = 4 * 5 + 3
  for (int e = 0; e < 2; ++e) {   // each epoch visits every sequence once
    std::vector<int64_t> all;
    for (int b = 0; b < 5; ++b)
      all.insert(all.end(), seen[e * 5 + b].begin(), seen[e * 5 + b].end());
    std::sort(all.begin(), all.end());
    std::vector<int64_t> want(n);
    std::iota(want.begin(), want.end(), 0);
    EXPECT_EQ(all, want);
  }
  EXPECT_NE(seen[0], seen[5]);  // a new order each epoch
  // A fresh iterator positioned anywhere continues exactly as the first one did.
  for (int step : {0, 3, 5, 9, 12}) {
    BatchIterator resumed(n, B, 42);
    resumed.seek(at[static_cast<size_t>(step)]);
    for (int k = step; k < 13; ++k)
      EXPECT_EQ(resumed.next(), seen[static_cast<size_t>(k)]) << step << " " << k;
  }
  EXPECT_NE(BatchIterator(n, B, 43).next(), seen[0]);
  EXPECT_THROW(it.seek({0, 5}), Error);
  EXPECT_THROW(it.seek({-1, 0}), Error);
  EXPECT_THROW(BatchIterator(0, 4, 1), Error);
  EXPECT_THROW(BatchIterator(4, 0, 1), Error);
}

Tokenizer qwen2_tokenizer() {
  return Tokenizer::from_hf_json(std::string(LORDS_SOURCE_DIR) +
                                 "/tests/tokenizer/fixtures/tiny_qwen2_tokenizer.json");
}

TEST(DataLoad, JsonlWithGroupsSplitsByGroup) {
  test::TempDir tmp;
  std::string jsonl;
  for (int q = 0; q < 20; ++q)
    for (int sub = 0; sub < 3; ++sub)
      jsonl += "{\"question\":\"q" + std::to_string(q) + " part " + std::to_string(sub) +
               "\",\"answer\":\"a" + std::to_string(q) + "\",\"group\":" + std::to_string(q) +
               "}\n";
  test::write_bytes(tmp.file("qa.jsonl"), jsonl);
  DataSpec spec;
  spec.train = {tmp.file("qa.jsonl")};
  spec.heldout_fraction = 0.25;
  spec.split_seed = 3;
  spec.T = 64;
  const Tokenizer tok = qwen2_tokenizer();
  const TrainingData d = load_training_data(tok, spec);
  EXPECT_EQ(d.format, PromptFormat::ChatMl);
  EXPECT_EQ(d.train.size(), 45);  // 15 groups of 3
  EXPECT_EQ(d.heldout.size(), 15);
  EXPECT_EQ(d.train.stats.truncated, 0);
  EXPECT_EQ(d.train.pad_id, 0);
  const TrainingData again = load_training_data(tok, spec);
  EXPECT_EQ(again.heldout.tokens, d.heldout.tokens);
  spec.T = 8;  // every response starts beyond 8 tokens
  EXPECT_THROW(load_training_data(tok, spec), Error);
}

TEST(DataLoad, TextHoldsOutWholeFilesOrSeparateFiles) {
  test::TempDir tmp;
  std::filesystem::create_directory(tmp.file("plays"));
  const char* names[] = {"hamlet.txt", "macbeth.txt", "lear.txt", "tempest.txt"};
  for (const char* n : names)
    test::write_bytes(tmp.file(std::string("plays/") + n),
                      std::string("The play ") + n + " begins.\nTo be or not to be.\n");
  const Tokenizer tok = qwen2_tokenizer();
  DataSpec spec;
  spec.train = {tmp.file("plays")};
  spec.split_unit = SplitUnit::File;
  spec.heldout_fraction = 0.25;
  spec.T = 4;
  const TrainingData d = load_training_data(tok, spec);
  ASSERT_EQ(d.heldout_files.size(), 1u);
  EXPECT_EQ(d.train_files.size(), 3u);
  EXPECT_GT(d.heldout.size(), 0);
  EXPECT_EQ(d.heldout.stats.loss_tokens + d.train.stats.loss_tokens,
            d.heldout.size() * 4 + d.train.size() * 4 - d.heldout.stats.pad_tokens -
                d.train.stats.pad_tokens);
  // Separate held-out files: nothing is split off.
  spec.train = {tmp.file("plays/hamlet.txt"), tmp.file("plays/lear.txt")};
  spec.heldout = {tmp.file("plays/macbeth.txt")};
  const TrainingData s = load_training_data(tok, spec);
  EXPECT_EQ(s.train_files.size(), 2u);
  EXPECT_EQ(s.heldout_files, std::vector<std::string>{tmp.file("plays/macbeth.txt")});
  spec.heldout = {tmp.file("plays/none.txt")};
  EXPECT_THROW(load_training_data(tok, spec), Error);
}

}  // namespace
}  // namespace lords::train
