// LoRA adapters beside a checkpoint (a QLoRA fine-tune, docs/FORMAT.md): adapters.safetensors holds
// "<hf weight name>.lora_A" (r, K) and "<hf weight name>.lora_B" (N, r) for each adapted linear and
// the metadata lora.rank, lora.alpha (ours, train_model_save.cpp) or peft's lora_rank, lora_alpha.
// The runtime adds the branch Y += (alpha / r) (X A^T) B^T to each adapted linear (linear.h), so a
// QLoRA output runs in perplexity / generate / bench without a merge step.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "lords/io/tensor_index.h"

namespace lords::runtime {

inline constexpr const char* kLoraAdaptersFile = "adapters.safetensors";

class LoraAdapters {
 public:
  // Reads path; Error{Format} for missing or non-numeric rank/alpha metadata, a rank or alpha <= 0,
  // or a tensor whose name does not end in .lora_A / .lora_B.
  explicit LoraAdapters(const std::string& path);

  const std::string& path() const { return path_; }
  int64_t rank() const { return rank_; }
  float alpha() const { return alpha_; }
  bool adapts(const std::string& name) const;  // name: the HF weight name of a linear
  // A (r, K) and B (N, r) of linear `name`, marked as used. Error{Format} when one of the pair is
  // missing, Error{BadShape} on a shape other than (r, K) / (N, r).
  void load(
      const std::string& name, int64_t N, int64_t K, std::vector<float>* A, std::vector<float>* B);
  // Error{Format} naming the first adapter no linear of the model used (call after loading them).
  void check_all_used(const std::string& model_path) const;

 private:
  std::string path_;
  io::TensorIndex index_;
  int64_t rank_ = 0;
  float alpha_ = 0;
  std::set<std::string> used_;  // linear names
};

}  // namespace lords::runtime
