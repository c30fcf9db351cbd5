// Training data end to end: files -> examples / text -> token items -> train and held-out sequence
// sets of length T. Inputs are JSONL example files (data_jsonl.h) and plain-text files, freely
// mixed; a directory stands for its *.jsonl, *.json and *.txt files in name order. Held-out data
// comes from separate files when given, else from a deterministic split of the training inputs
// (data_batches.h split_by_key) by one of two units:
//   Item  examples (by "group", else by their text, so duplicates never straddle the split) and
//   text
//         windows (by file and window index; the windows depend on T)
//   File  whole files, e.g. train on some of Shakespeare's plays and hold out others
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lords/tokenizer/tokenizer.h"
#include "lords/train/data_batches.h"
#include "lords/train/data_format.h"

namespace lords::train {

enum class SplitUnit { Item, File };

struct DataSpec {
  std::vector<std::string> train;    // files or directories
  std::vector<std::string> heldout;  // files or directories; empty = split off the training inputs
  double heldout_fraction = 0.1;     // used when heldout is empty; 0 = no held-out set
  uint64_t split_seed = 0;
  SplitUnit split_unit = SplitUnit::Item;
  int64_t T = 256;                     // sequence length
  std::optional<PromptFormat> format;  // default: default_prompt_format(tokenizer)
  std::string system_prompt;           // ChatML system turn, none when empty
  std::optional<int32_t> pad_id;       // default: eos, else 0
};

struct TrainingData {
  PromptFormat format = PromptFormat::ChatMl;
  std::vector<std::string> train_files, heldout_files;  // after expanding directories
  SequenceSet train, heldout;  // heldout is empty (size() == 0) without held-out data
};

// Throws Error naming the file (and line) for unreadable or malformed input, Error{Usage} for a
// spec that selects nothing (no files, no training sequence left).
TrainingData load_training_data(const Tokenizer& tok, const DataSpec& spec);

// The files a list of paths stands for (directories expanded); Error{Io} for a missing path or a
// directory without data files.
std::vector<std::string> expand_data_paths(const std::vector<std::string>& paths);

}  // namespace lords::train
