#include "lords/train/data_load.h"

#include <algorithm>
#include <filesystem>

#include "lords/core/error.h"
#include "lords/runtime/text_source.h"

namespace lords::train {
namespace {

namespace fs = std::filesystem;

struct KeyedItem {
  TokenItem item;
  std::string item_key;  // split key of unit Item
  size_t file = 0;       // index into the file list (unit File)
};

// Every item of one file, in file order.
void read_items(const Tokenizer& tok,
                const std::string& path,
                size_t file_index,
                const DataSpec& spec,
                const FormatOptions& fo,
                std::vector<KeyedItem>* out) {
  if (data_kind_of(path) == DataKind::Jsonl) {
    for (const Example& ex : read_jsonl_examples(path)) {
      KeyedItem k;
      k.item = format_example(tok, ex, fo, path);
      // The prefixes keep the kinds of key apart; \x1f (ASCII unit separator) does not occur in text.
      k.item_key =
          ex.group.empty() ? "e\x1f" + ex.prompt + "\x1f" + ex.response : "g\x1f" + ex.group;
      k.file = file_index;
      out->push_back(std::move(k));
    }
    return;
  }
  const std::string text = runtime::read_text_file(path);
  std::vector<TokenItem> windows = text_windows(tok, text, spec.T);
  const std::string name = fs::path(path).filename().string();
  for (size_t i = 0; i < windows.size(); ++i) {
    out->push_back({std::move(windows[i]), fmt::format("w\x1f{}\x1f{}", name, i), file_index});
  }
}

SequenceSet to_sequences(const std::vector<KeyedItem>& items,
                         const std::vector<int64_t>& which,
                         int64_t T,
                         int32_t pad_id) {
  SequenceSet set = make_sequence_set(T, pad_id);
  for (int64_t i : which) append_item(&set, items[static_cast<size_t>(i)].item);
  return set;
}

std::vector<int64_t> all_indices(size_t n) {
  std::vector<int64_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<int64_t>(i);
  return v;
}

}  // namespace

std::vector<std::string> expand_data_paths(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const std::string& p : paths) {
    LORDS_CHECK(fs::exists(p), ErrorKind::Io, "{}: no such file or directory", p);
    if (!fs::is_directory(p)) {
      out.push_back(p);
      continue;
    }
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(p)) {
      const std::string ext = e.path().extension().string();
      if (e.is_regular_file() && (ext == ".jsonl" || ext == ".json" || ext == ".txt"))
        files.push_back(e.path());
    }
    LORDS_CHECK(
        !files.empty(), ErrorKind::Io, "{}: directory holds no .jsonl, .json or .txt file", p);
    std::sort(files.begin(), files.end());
    out.insert(out.end(), files.begin(), files.end());
  }
  return out;
}

TrainingData load_training_data(const Tokenizer& tok, const DataSpec& spec) {
  LORDS_CHECK(!spec.train.empty(), ErrorKind::Usage, "no training data given");
  TrainingData out;
  out.format = spec.format.value_or(default_prompt_format(tok));
  const FormatOptions fo{out.format, spec.system_prompt};
  const int32_t pad_id = spec.pad_id.value_or(tok.eos_id().value_or(0));
  out.train_files = expand_data_paths(spec.train);
  out.heldout_files = expand_data_paths(spec.heldout);

  std::vector<KeyedItem> items;
  for (size_t f = 0; f < out.train_files.size(); ++f)
    read_items(tok, out.train_files[f], f, spec, fo, &items);
  if (!out.heldout_files.empty()) {
    std::vector<KeyedItem> held;
    for (size_t f = 0; f < out.heldout_files.size(); ++f)
      read_items(tok, out.heldout_files[f], f, spec, fo, &held);
    out.train = to_sequences(items, all_indices(items.size()), spec.T, pad_id);
    out.heldout = to_sequences(held, all_indices(held.size()), spec.T, pad_id);
  } else if (spec.split_unit == SplitUnit::File) {
    std::vector<std::string> names;
    for (const std::string& f : out.train_files) names.push_back(fs::path(f).filename().string());
    const SplitIndices split = split_by_key(names, spec.heldout_fraction, spec.split_seed);
    std::vector<bool> held_file(names.size(), false);
    for (int64_t f : split.heldout) held_file[static_cast<size_t>(f)] = true;
    std::vector<int64_t> train_items, held_items;
    for (size_t i = 0; i < items.size(); ++i)
      (held_file[items[i].file] ? held_items : train_items).push_back(static_cast<int64_t>(i));
    out.train = to_sequences(items, train_items, spec.T, pad_id);
    out.heldout = to_sequences(items, held_items, spec.T, pad_id);
    const std::vector<std::string> files = out.train_files;
    out.train_files.clear();
    for (size_t f = 0; f < files.size(); ++f)
      (held_file[f] ? out.heldout_files : out.train_files).push_back(files[f]);
  } else {
    std::vector<std::string> keys;
    keys.reserve(items.size());
    for (const KeyedItem& k : items) keys.push_back(k.item_key);
    const SplitIndices split = split_by_key(keys, spec.heldout_fraction, spec.split_seed);
    out.train = to_sequences(items, split.train, spec.T, pad_id);
    out.heldout = to_sequences(items, split.heldout, spec.T, pad_id);
  }
  LORDS_CHECK(out.train.size() > 0,
              ErrorKind::Usage,
              "no training sequence left (T = {}): the inputs hold no target with loss weight > 0",
              spec.T);
  return out;
}

}  // namespace lords::train
