#include "lords/runtime/lora_adapters.h"

#include <map>

#include "lords/core/error.h"
#include "lords/io/safetensors.h"

namespace lords::runtime {
namespace {

constexpr const char* kSuffixA = ".lora_A";
constexpr const char* kSuffixB = ".lora_B";


// The linear a tensor name belongs to ("" when it is neither .lora_A nor .lora_B).
std::string linear_of(const std::string& tensor) {
  for (const char* s : {kSuffixA, kSuffixB})
    if (tensor.ends_with(s)) return tensor.substr(0, tensor.size() - std::string(s).size());
  return "";
}

}  // namespace

LoraAdapters::LoraAdapters(const std::string& path) : path_(path) {
  const std::map<std::string, std::string> meta = io::read_safetensors(path, &index_);
  const double r = io::metadata_number(meta, "lora.rank", "lora_rank", path);
  const double alpha = io::metadata_number(meta, "lora.alpha", "lora_alpha", path);
  LORDS_CHECK(r >= 1 && r == static_cast<double>(static_cast<int64_t>(r)) && alpha > 0,
              ErrorKind::Format,
              "{}: LoRA rank {} must be a positive integer and alpha {} positive",
              path,
              r,
              alpha);
  rank_ = static_cast<int64_t>(r);
  alpha_ = static_cast<float>(alpha);
  for (const auto& [name, info] : index_.all())
    LORDS_CHECK(!linear_of(name).empty(),
                ErrorKind::Format,
                "{}: tensor '{}' is not a LoRA adapter (names end in .lora_A or .lora_B)",
                path,
                name);
}

bool LoraAdapters::adapts(const std::string& name) const {
  return index_.contains(name + kSuffixA) || index_.contains(name + kSuffixB);
}

void LoraAdapters::load(
    const std::string& name, int64_t N, int64_t K, std::vector<float>* A, std::vector<float>* B) {
  const auto get = [&](const std::string& tensor, const Shape& shape) {
    LORDS_CHECK(
        index_.contains(tensor), ErrorKind::Format, "{}: tensor '{}' missing", path_, tensor);
    HostTensor t = index_.load_f32(tensor);
    LORDS_CHECK(t.shape == shape,
                ErrorKind::BadShape,
                "{}: tensor '{}' has shape {}, expected {}",
                path_,
                tensor,
                shape_str(t.shape),
                shape_str(shape));
    return std::move(t.data);
  };
  *A = get(name + kSuffixA, {rank_, K});
  *B = get(name + kSuffixB, {N, rank_});
  used_.insert(name);
}

void LoraAdapters::check_all_used(const std::string& model_path) const {
  for (const auto& [tensor, info] : index_.all()) {
    const std::string name = linear_of(tensor);
    LORDS_CHECK(used_.count(name) != 0,
                ErrorKind::Format,
                "{}: adapter '{}' matches no linear of {}",
                path_,
                tensor,
                model_path);
  }
}

}  // namespace lords::runtime
