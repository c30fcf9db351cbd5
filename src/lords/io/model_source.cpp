// open_model: one entry point for the two ways a model arrives. A Hugging Face directory gives
// config.json plus model.safetensors or shards listed in model.safetensors.index.json ("weight_map":
// tensor -> shard file). A GGUF file gives tensors plus metadata, from which an HF-style config is
// synthesized using llama.cpp's key names (<arch>.embedding_length, <arch>.attention.head_count, ...;
// see ggml docs/gguf.md "LLM" section) so everything downstream reads one config format.
#include "lords/io/model_source.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "lords/core/error.h"
#include "lords/io/gguf.h"
#include "lords/io/safetensors.h"

namespace lords::io {
namespace {

namespace fs = std::filesystem;

// No-throw stat: a permission problem reads as "absent" and ends in a lords::Error naming the path.
bool is_file(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

constexpr const char* kAuxFiles[] = {"tokenizer.json",          "tokenizer_config.json", "special_tokens_map.json",
                                     "generation_config.json", "vocab.txt",             "merges.txt"};

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  LORDS_CHECK(in.good(), ErrorKind::Io, "{}: cannot open", path);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    LORDS_FAIL(ErrorKind::Format, "{}: invalid JSON: {}", path, e.what());
  }
}

void read_shard(const std::string& path, ModelSource* src) {
  for (auto& [key, value] : read_safetensors(path, &src->index)) src->st_metadata.emplace(key, value);
}

// model.safetensors.index.json: read every shard named in weight_map once, then check that each
// tensor the map names really is in the shard the map says.
void read_sharded(const std::string& dir, const std::string& index_path, ModelSource* src) {
  const nlohmann::json idx = read_json_file(index_path);
  LORDS_CHECK(idx.is_object() && idx.contains("weight_map") && idx["weight_map"].is_object(), ErrorKind::Format,
              "{}: no weight_map object", index_path);
  const nlohmann::json& map = idx["weight_map"];
  std::set<std::string> shards;
  for (const auto& [tensor, shard] : map.items()) {
    LORDS_CHECK(shard.is_string(), ErrorKind::Format, "{}: weight_map entry {} is not a file name", index_path,
                tensor);
    const std::string name = shard.get<std::string>();
    // Shards live next to the index; a path would let the index point anywhere on the machine.
    LORDS_CHECK(!name.empty() && name.find('/') == std::string::npos && name != "." && name != "..",
                ErrorKind::Format, "{}: weight_map entry {}: '{}' is not a plain file name", index_path, tensor, name);
    shards.insert(name);
  }
  for (const std::string& name : shards) {
    const std::string path = dir + "/" + name;
    LORDS_CHECK(is_file(path), ErrorKind::Io, "{}: lists shard {}, which does not exist", index_path,
                name);
    read_shard(path, src);
  }
  for (const auto& [tensor, shard] : map.items()) {
    const std::string path = dir + "/" + shard.get<std::string>();
    LORDS_CHECK(src->index.contains(tensor) && src->index.at(tensor).file->path() == path, ErrorKind::Format,
                "{}: weight_map puts tensor {} in {}, which does not contain it", index_path, tensor,
                shard.get<std::string>());
  }
}

ModelSource open_hf_dir(const std::string& dir) {
  ModelSource src;
  src.kind = SourceKind::HfDir;
  src.path = dir;
  src.config_path = dir + "/config.json";
  LORDS_CHECK(is_file(src.config_path), ErrorKind::Io, "{}: no config.json in the model directory", dir);
  src.config = read_json_file(src.config_path);
  LORDS_CHECK(src.config.is_object(), ErrorKind::Format, "{}: not a JSON object", src.config_path);
  const std::string single = dir + "/model.safetensors";
  const std::string index = dir + "/model.safetensors.index.json";
  if (is_file(single)) {
    read_shard(single, &src);
  } else if (is_file(index)) {
    read_sharded(dir, index, &src);
  } else {
    LORDS_FAIL(ErrorKind::Io, "{}: neither model.safetensors nor model.safetensors.index.json exists", dir);
  }
  for (const char* name : kAuxFiles)
    if (is_file(dir + "/" + name)) src.aux_files.push_back(dir + "/" + name);
  return src;
}

// Typed access to GGUF metadata for the config synthesis; errors name the file and the key.
class GgufMeta {
 public:
  GgufMeta(const nlohmann::json& meta, const std::string& path, std::string arch)
      : meta_(meta), path_(path), arch_(std::move(arch)) {}

  bool has(const std::string& key) const { return meta_.contains(arch_ + "." + key); }
  int64_t integer(const std::string& key) const { return integer_at(arch_ + "." + key); }
  double number(const std::string& key) const {
    const nlohmann::json& v = get(arch_ + "." + key);
    LORDS_CHECK(v.is_number(), ErrorKind::Format, "{}: metadata key {} is not a number", path_, arch_ + "." + key);
    return v.get<double>();
  }
  // A key outside the <arch>. namespace, e.g. tokenizer.ggml.bos_token_id.
  int64_t integer_at(const std::string& full_key) const {
    const nlohmann::json& v = get(full_key);
    LORDS_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0, ErrorKind::Format,
                "{}: metadata key {} is not a non-negative integer", path_, full_key);
    return v.get<int64_t>();
  }

 private:
  const nlohmann::json& get(const std::string& key) const {
    LORDS_CHECK(meta_.contains(key), ErrorKind::Format, "{}: missing GGUF metadata key {}", path_, key);
    return meta_.at(key);
  }
  const nlohmann::json& meta_;
  std::string path_;
  std::string arch_;
};

std::string architecture_class(const std::string& arch) {
  if (arch == "llama") return "LlamaForCausalLM";
  if (arch == "qwen2") return "Qwen2ForCausalLM";
  return "MistralForCausalLM";
}

int64_t gguf_vocab_size(const GgufMeta& m, const nlohmann::json& meta, const std::string& path,
                        const std::string& arch) {
  if (m.has("vocab_size")) return m.integer("vocab_size");
  const auto it = meta.find("tokenizer.ggml.tokens");
  LORDS_CHECK(it != meta.end() && it->is_array(), ErrorKind::Format,
              "{}: missing GGUF metadata key {}.vocab_size (and no tokenizer.ggml.tokens)", path, arch);
  return static_cast<int64_t>(it->size());
}

nlohmann::json synthesize_config(const ModelSource& src) {
  const nlohmann::json& meta = src.gguf_metadata;
  const std::string& path = src.path;
  const auto arch_it = meta.find("general.architecture");
  LORDS_CHECK(arch_it != meta.end() && arch_it->is_string(), ErrorKind::Format,
              "{}: missing GGUF metadata key general.architecture", path);
  const std::string arch = arch_it->get<std::string>();
  LORDS_CHECK(arch == "llama" || arch == "qwen2" || arch == "mistral", ErrorKind::Unsupported,
              "{}: unsupported architecture '{}' (supported: llama, qwen2, mistral)", path, arch);
  const GgufMeta m(meta, path, arch);
  const int64_t hidden = m.integer("embedding_length");
  const int64_t heads = m.integer("attention.head_count");
  LORDS_CHECK(heads > 0, ErrorKind::Format, "{}: metadata key {}.attention.head_count is 0", path, arch);
  nlohmann::json c = {
      {"architectures", {architecture_class(arch)}},
      {"model_type", arch},
      {"hidden_size", hidden},
      {"intermediate_size", m.integer("feed_forward_length")},
      {"num_hidden_layers", m.integer("block_count")},
      {"num_attention_heads", heads},
      {"num_key_value_heads", m.has("attention.head_count_kv") ? m.integer("attention.head_count_kv") : heads},
      {"rms_norm_eps", m.number("attention.layer_norm_rms_epsilon")},
      {"rope_theta", m.has("rope.freq_base") ? m.number("rope.freq_base") : 10000.0},
      {"max_position_embeddings", m.integer("context_length")},
      {"vocab_size", gguf_vocab_size(m, meta, path, arch)},
      {"tie_word_embeddings", !src.index.contains("output.weight")},
      {"torch_dtype", "float32"},
      {"head_dim", m.has("attention.key_length") ? m.integer("attention.key_length") : hidden / heads},
  };
  for (const char* id : {"bos_token_id", "eos_token_id"})
    if (meta.contains(std::string("tokenizer.ggml.") + id)) c[id] = m.integer_at(std::string("tokenizer.ggml.") + id);
  return c;
}

ModelSource open_gguf(const std::string& path) {
  ModelSource src;
  src.kind = SourceKind::Gguf;
  src.path = path;
  src.config_path = path;
  src.gguf_metadata = read_gguf(path, &src.index);
  src.config = synthesize_config(src);
  return src;
}

bool starts_with_gguf_magic(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

}  // namespace

ModelSource open_model(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return open_hf_dir(path);
  if (is_file(path) && starts_with_gguf_magic(path)) return open_gguf(path);
  LORDS_FAIL(ErrorKind::Io, "{}: not a model directory or GGUF file", path);
}

}  // namespace lords::io
