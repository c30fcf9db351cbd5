// A checkpoint whose metadata disagrees with its tensors is refused with an error naming the file.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/random_model.h"
#include "common/temp_dir.h"
#include "lords/core/error.h"
#include "lords/engine/checkpoint.h"
#include "lords/engine/quantize_model.h"
#include "lords/io/safetensors.h"

namespace fs = std::filesystem;
using namespace lords;

namespace {

// Rewrites dir/model.safetensors with the same tensors and metadata changed by edit().
void rewrite_metadata(const std::string& dir, const std::function<void(std::map<std::string, std::string>&)>& edit) {
  const std::string path = dir + "/model.safetensors";
  const std::string copy = dir + "/orig.safetensors";
  fs::rename(path, copy);
  io::TensorIndex index;
  auto meta = io::read_safetensors(copy, &index);
  edit(meta);
  io::SafetensorsWriter w(path);
  w.set_metadata(meta);
  for (const auto& name : index.names()) {
    DType t = DType::F32;
    ASSERT_TRUE(dtype_from_name(index.at(name).dtype, &t));
    w.declare(name, t, index.at(name).shape);
  }
  w.begin();
  for (const auto& name : index.names()) w.write(name, index.raw(name), index.at(name).nbytes);
  w.commit();
  fs::remove(copy);
}

class CheckpointLies : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directory(tmp_.file("src"));
    test::write_random_model(tmp_.file("src"), {});
    engine::QuantizeRequest req;
    req.source = tmp_.file("src");
    req.output = tmp_.file("ck");
    req.config.block = 16;
    req.config.steps = 2;
    req.progress = false;
    engine::quantize_model(req);
  }
  void expect_refused(const std::string& phrase) {
    try {
      engine::Checkpoint ck(tmp_.file("ck"));
      FAIL() << "expected: " << phrase;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
      EXPECT_NE(msg.find(phrase), std::string::npos) << msg;
    }
  }
  test::TempDir tmp_;
};

TEST_F(CheckpointLies, ValidCheckpointOpens) {
  const engine::Checkpoint ck(tmp_.file("ck"));
  EXPECT_EQ(ck.quantized_names().size(), 14u);
  EXPECT_EQ(ck.bits(), 4);
  EXPECT_EQ(ck.codebook().name(), "nf4");
}

TEST_F(CheckpointLies, WrongRank) {
  rewrite_metadata(tmp_.file("ck"), [](auto& m) {
    auto layers = nlohmann::json::parse(m["lords.layers"]);
    layers["model.layers.0.self_attn.q_proj.weight"]["rank"] = 7;
    m["lords.layers"] = layers.dump();
  });
  expect_refused("metadata implies");
}

TEST_F(CheckpointLies, LayerWithoutTensors) {
  rewrite_metadata(tmp_.file("ck"), [](auto& m) {
    auto layers = nlohmann::json::parse(m["lords.layers"]);
    layers["model.layers.9.mlp.up_proj.weight"] = {{"shape", {160, 64}}, {"rank", 2}};
    m["lords.layers"] = layers.dump();
  });
  expect_refused("is missing");
}

TEST_F(CheckpointLies, WrongLevelCount) {
  rewrite_metadata(tmp_.file("ck"), [](auto& m) { m["lords.levels"] = "[-1.0, 0.0, 1.0]"; });
  expect_refused("metadata");
}

TEST_F(CheckpointLies, NotALordsFile) {
  rewrite_metadata(tmp_.file("ck"), [](auto& m) { m.erase("format"); });
  expect_refused("not a lords checkpoint");
}

TEST_F(CheckpointLies, FutureVersion) {
  rewrite_metadata(tmp_.file("ck"), [](auto& m) { m["format_version"] = "99"; });
  expect_refused("unsupported format_version");
}

TEST_F(CheckpointLies, BrokenSettingsJson) {
  rewrite_metadata(tmp_.file("ck"), [](auto& m) { m["lords.settings"] = "{not json"; });
  expect_refused("not valid JSON");
}

}  // namespace
