// open_model tests: HF directories (single file, sharded with an index, and the ways they break) and
// GGUF files (HF config synthesized from llama.cpp metadata keys, missing keys, unknown architectures).
#include <gtest/gtest.h>

#include <fstream>

#include "common/temp_dir.h"
#include "io/gguf_builder.h"
#include "lords/io/model_source.h"
#include "lords/io/safetensors.h"

namespace lords::test {
namespace {

using io::ModelSource;
using io::open_model;

const nlohmann::json kConfig = {{"model_type", "llama"}, {"hidden_size", 8}};

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// A safetensors file holding U8 tensors of one byte each, named as given.
void write_shard(const std::string& path, const std::vector<std::string>& names,
                 std::map<std::string, std::string> meta = {}) {
  io::SafetensorsWriter w(path);
  w.set_metadata(std::move(meta));
  for (const std::string& n : names) w.declare(n, DType::U8, {1});
  w.begin();
  for (const std::string& n : names) w.write(n, "x", 1);
  w.commit();
}

void write_index(const std::string& dir, const nlohmann::json& weight_map) {
  write_text(dir + "/model.safetensors.index.json",
             nlohmann::json({{"metadata", {{"total_size", 3}}}, {"weight_map", weight_map}}).dump());
}

// A sharded HF directory: a and b in shard 1, c in shard 2.
void write_sharded(const TempDir& dir) {
  write_text(dir.file("config.json"), kConfig.dump());
  write_shard(dir.file("model-00001-of-00002.safetensors"), {"a", "b"}, {{"format", "pt"}});
  write_shard(dir.file("model-00002-of-00002.safetensors"), {"c"}, {{"format", "pt"}, {"x", "1"}});
  write_index(dir.path(), {{"a", "model-00001-of-00002.safetensors"},
                           {"b", "model-00001-of-00002.safetensors"},
                           {"c", "model-00002-of-00002.safetensors"}});
}

TEST(ModelSource, HfSingleFile) {
  TempDir dir;
  write_text(dir.file("config.json"), kConfig.dump());
  write_shard(dir.file("model.safetensors"), {"w", "v"}, {{"format", "pt"}});
  write_text(dir.file("tokenizer.json"), "{}");
  write_text(dir.file("merges.txt"), "a b\n");
  write_text(dir.file("README.md"), "not copied");
  const ModelSource src = open_model(dir.path());
  EXPECT_EQ(src.kind, io::SourceKind::HfDir);
  EXPECT_EQ(src.path, dir.path());
  EXPECT_EQ(src.config_path, dir.file("config.json"));
  EXPECT_EQ(src.config, kConfig);
  EXPECT_TRUE(src.gguf_metadata.empty());
  EXPECT_EQ(src.index.names(), (std::vector<std::string>{"v", "w"}));
  EXPECT_EQ(src.st_metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
  EXPECT_EQ(src.aux_files, (std::vector<std::string>{dir.file("tokenizer.json"), dir.file("merges.txt")}));
}

TEST(ModelSource, HfSharded) {
  TempDir dir;
  write_sharded(dir);
  const ModelSource src = open_model(dir.path());
  EXPECT_EQ(src.index.names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(src.index.at("c").file->path(), dir.file("model-00002-of-00002.safetensors"));
  EXPECT_EQ(src.index.at("a").file, src.index.at("b").file);  // each shard mapped once
  EXPECT_EQ(src.st_metadata, (std::map<std::string, std::string>{{"format", "pt"}, {"x", "1"}}));
  EXPECT_TRUE(src.aux_files.empty());
}

TEST(ModelSource, HfShardProblems) {
  TempDir dir;
  write_sharded(dir);
  const std::string index = "model.safetensors.index.json";
  write_index(dir.path(), {{"a", "model-00001-of-00002.safetensors"}, {"c", "model-00003-of-00003.safetensors"}});
  expect_error([&] { open_model(dir.path()); },
               {index, "lists shard model-00003-of-00003.safetensors", "does not exist"});
  write_index(dir.path(), {{"a", "model-00001-of-00002.safetensors"}, {"c", "model-00001-of-00002.safetensors"}});
  expect_error([&] { open_model(dir.path()); }, {index, "tensor c", "does not contain it"});
  write_index(dir.path(), {{"a", "../model-00001-of-00002.safetensors"}});
  expect_error([&] { open_model(dir.path()); }, {index, "not a plain file name"});
  write_text(dir.file(index), "{\"weight_map\": [}");
  expect_error([&] { open_model(dir.path()); }, {index, "invalid JSON"});
  write_text(dir.file(index), "{\"weight_map\": []}");
  expect_error([&] { open_model(dir.path()); }, {index, "no weight_map object"});
  // A tensor that is in two shards.
  write_shard(dir.file("model-00002-of-00002.safetensors"), {"c", "a"});
  write_index(dir.path(), {{"a", "model-00001-of-00002.safetensors"}, {"c", "model-00002-of-00002.safetensors"}});
  expect_error([&] { open_model(dir.path()); }, {"tensor a is also in"});
}

TEST(ModelSource, HfDirectoryProblems) {
  TempDir dir;
  expect_error([&] { open_model(dir.path()); }, {dir.path(), "no config.json"});
  write_text(dir.file("config.json"), "{\"hidden_size\": ");
  expect_error([&] { open_model(dir.path()); }, {dir.file("config.json"), "invalid JSON"});
  write_text(dir.file("config.json"), "[1]");
  expect_error([&] { open_model(dir.path()); }, {dir.file("config.json"), "not a JSON object"});
  write_text(dir.file("config.json"), kConfig.dump());
  expect_error([&] { open_model(dir.path()); }, {dir.path(), "neither model.safetensors nor"});
  write_text(dir.file("model.safetensors"), "garbage");
  expect_error([&] { open_model(dir.path()); }, {dir.file("model.safetensors"), "too short"});
}

TEST(ModelSource, NeitherDirectoryNorGguf) {
  TempDir dir;
  write_text(dir.file("model.bin"), "PK\x03\x04 not gguf");
  expect_error([&] { open_model(dir.file("model.bin")); }, {"model.bin", "not a model directory or GGUF file"});
  expect_error([&] { open_model(dir.file("missing")); }, {"missing", "not a model directory or GGUF file"});
}

// llama.cpp-style metadata of a small model; `skip` leaves one key out.
GgufBuilder llama_gguf(const std::string& arch, const std::string& skip = "") {
  GgufBuilder b;
  auto u32 = [&](const std::string& key, uint32_t v) {
    if (key != skip) b.kv_u32(key, v);
  };
  b.kv_str("general.architecture", arch);
  u32(arch + ".embedding_length", 64);
  u32(arch + ".feed_forward_length", 160);
  u32(arch + ".block_count", 2);
  u32(arch + ".attention.head_count", 4);
  u32(arch + ".attention.head_count_kv", 2);
  u32(arch + ".context_length", 256);
  if (skip != arch + ".attention.layer_norm_rms_epsilon") b.kv_f32(arch + ".attention.layer_norm_rms_epsilon", 1e-5f);
  b.kv("tokenizer.ggml.tokens", kGArray,
       gguf_array(kGString, {gguf_string("<s>"), gguf_string("</s>"), gguf_string("a")}));
  u32("tokenizer.ggml.bos_token_id", 0);
  u32("tokenizer.ggml.eos_token_id", 1);
  b.tensor({"token_embd.weight", {64, 3}, kF32, std::string(64 * 3 * 4, '\0'), std::nullopt});
  return b;
}

TEST(ModelSource, GgufConfigSynthesis) {
  TempDir dir;
  const std::string path = dir.file("m.gguf");
  write_bytes(path, llama_gguf("llama").build());
  const ModelSource src = open_model(path);
  EXPECT_EQ(src.kind, io::SourceKind::Gguf);
  EXPECT_EQ(src.config_path, path);
  EXPECT_EQ(src.gguf_metadata["llama.block_count"], 2);
  EXPECT_TRUE(src.index.contains("token_embd.weight"));
  const nlohmann::json expected = {
      {"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", 64},
      {"intermediate_size", 160}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
      {"num_key_value_heads", 2}, {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0},
      {"max_position_embeddings", 256}, {"vocab_size", 3}, {"tie_word_embeddings", true},
      {"bos_token_id", 0}, {"eos_token_id", 1}, {"torch_dtype", "float32"}, {"head_dim", 16}};
  EXPECT_EQ(src.config, expected) << src.config.dump();
  EXPECT_TRUE(src.aux_files.empty());
}

TEST(ModelSource, GgufOptionalKeysAndArchitectures) {
  TempDir dir;
  GgufBuilder b = llama_gguf("qwen2", "qwen2.attention.head_count_kv");
  b.kv_u32("qwen2.vocab_size", 151936).kv_f32("qwen2.rope.freq_base", 1e6f).kv_u32("qwen2.attention.key_length", 32);
  b.tensor({"output.weight", {64, 3}, kF32, std::string(64 * 3 * 4, '\0'), std::nullopt});
  write_bytes(dir.file("q.gguf"), b.build());
  const nlohmann::json c = open_model(dir.file("q.gguf")).config;
  EXPECT_EQ(c["architectures"], nlohmann::json({"Qwen2ForCausalLM"}));
  EXPECT_EQ(c["model_type"], "qwen2");
  EXPECT_EQ(c["num_key_value_heads"], 4);  // defaults to the head count
  EXPECT_EQ(c["vocab_size"], 151936);      // the key wins over the token list
  EXPECT_EQ(c["rope_theta"], 1e6);
  EXPECT_EQ(c["head_dim"], 32);
  EXPECT_EQ(c["tie_word_embeddings"], false);
  write_bytes(dir.file("mi.gguf"), llama_gguf("mistral", "tokenizer.ggml.bos_token_id").build());
  const nlohmann::json m = open_model(dir.file("mi.gguf")).config;
  EXPECT_EQ(m["architectures"], nlohmann::json({"MistralForCausalLM"}));
  EXPECT_FALSE(m.contains("bos_token_id"));
  EXPECT_EQ(m["eos_token_id"], 1);
}

TEST(ModelSource, GgufMissingKeysAndUnknownArchitecture) {
  TempDir dir;
  const std::string path = dir.file("bad.gguf");
  for (const char* key : {"llama.embedding_length", "llama.feed_forward_length", "llama.block_count",
                          "llama.attention.head_count", "llama.context_length",
                          "llama.attention.layer_norm_rms_epsilon"}) {
    SCOPED_TRACE(key);
    write_bytes(path, llama_gguf("llama", key).build());
    expect_error([&] { open_model(path); }, {"bad.gguf", "missing GGUF metadata key", key});
  }
  write_bytes(path, llama_gguf("llama").kv_str("llama.block_count", "two").build());
  expect_error([&] { open_model(path); }, {"bad.gguf", "duplicate metadata key llama.block_count"});
  GgufBuilder wrong_type = llama_gguf("llama", "llama.block_count");
  wrong_type.kv_str("llama.block_count", "two");
  write_bytes(path, wrong_type.build());
  expect_error([&] { open_model(path); }, {"bad.gguf", "llama.block_count is not a non-negative integer"});
  write_bytes(path, GgufBuilder().kv_u32("llama.block_count", 2).build());
  expect_error([&] { open_model(path); }, {"bad.gguf", "general.architecture"});
  write_bytes(path, llama_gguf("gpt2").build());
  EXPECT_EQ(expect_error([&] { open_model(path); }, {"bad.gguf", "unsupported architecture 'gpt2'"}),
            ErrorKind::Unsupported);
  GgufBuilder no_vocab;
  no_vocab.kv_str("general.architecture", "llama");
  for (const char* k : {"embedding_length", "feed_forward_length", "block_count", "attention.head_count",
                        "context_length"})
    no_vocab.kv_u32(std::string("llama.") + k, 8);
  no_vocab.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-6f);
  write_bytes(path, no_vocab.build());
  expect_error([&] { open_model(path); }, {"bad.gguf", "llama.vocab_size"});
}

}  // namespace
}  // namespace lords::test
