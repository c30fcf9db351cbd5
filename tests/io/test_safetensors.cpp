// safetensors tests: writer/reader round trip for every dtype we write, header layout, atomic output,
// concurrent writes, and a reader that rejects every kind of lying file with a message naming the file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/temp_dir.h"
#include "io/io_test_util.h"
#include "lords/io/safetensors.h"

namespace lords::test {
namespace {

using io::SafetensorsWriter;
using io::TensorIndex;

template <typename T>
std::vector<T> iota_of(size_t n, T start, T step) {
  std::vector<T> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<T>(start + static_cast<T>(i) * step);
  return v;
}

std::vector<std::string> dir_entries(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// A file from an explicit header text and data block: the way to write what the writer never would.
std::string st_file(const std::string& header, const std::string& data) {
  return le_bytes<uint64_t>(header.size()) + header + data;
}

TEST(Safetensors, RoundTripEveryDtypeWithMetadata) {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  const std::vector<float> f32 = {1.0f, -2.5f, 3.25f, 0.0f, 1e-20f, -7.0f};
  const std::vector<uint16_t> f16 = {f32_to_fp16(0.5f), f32_to_fp16(-1.0f), f32_to_fp16(65504.0f)};
  const std::vector<uint16_t> bf16 = {f32_to_bf16(3.0f), f32_to_bf16(-0.125f)};
  const std::vector<uint8_t> u8 = {0, 1, 255};  // 3 bytes: the next tensor starts unaligned
  const std::vector<int32_t> i32 = iota_of<int32_t>(5, -2, 1000000);
  {
    SafetensorsWriter w(path);
    w.set_metadata({{"format", "pt"}, {"note", "x\"y"}});
    w.declare("w.f32", DType::F32, {2, 3});
    w.declare("a.f16", DType::F16, {3});
    w.declare("z.bf16", DType::BF16, {1, 2});
    w.declare("u8", DType::U8, {3});
    w.declare("i32", DType::I32, {5});
    w.declare("empty", DType::F32, {0, 4});
    w.begin();
    w.write("i32", i32.data(), 20);  // any order
    w.write("u8", u8.data(), 3);
    w.write("z.bf16", bf16.data(), 4);
    w.write("empty", nullptr, 0);
    w.write("a.f16", f16.data(), 6);
    w.write("w.f32", f32.data(), 24);
    w.commit();
  }
  TensorIndex index;
  const auto meta = io::read_safetensors(path, &index);
  EXPECT_EQ(meta, (std::map<std::string, std::string>{{"format", "pt"}, {"note", "x\"y"}}));
  EXPECT_EQ(index.names(), (std::vector<std::string>{"a.f16", "empty", "i32", "u8", "w.f32", "z.bf16"}));
  EXPECT_EQ(index.at("w.f32").shape, (Shape{2, 3}));
  EXPECT_EQ(index.at("z.bf16").dtype, "BF16");
  EXPECT_EQ(index.at("u8").dtype, "U8");
  EXPECT_EQ(index.at("i32").nbytes, 20u);
  EXPECT_EQ(index.load_f32("w.f32").data, f32);
  EXPECT_EQ(index.load_f32("a.f16").data, (std::vector<float>{0.5f, -1.0f, 65504.0f}));
  EXPECT_EQ(index.load_f32("z.bf16").data, (std::vector<float>{3.0f, -0.125f}));
  EXPECT_TRUE(index.load_f32("empty").data.empty());
  EXPECT_EQ(std::memcmp(index.raw("u8"), u8.data(), 3), 0);
  EXPECT_EQ(std::memcmp(index.raw("i32"), i32.data(), 20), 0);
  expect_error([&] { index.load_f32("i32"); }, {"model.safetensors", "tensor i32", "cannot convert dtype I32"});
  expect_error([&] { index.at("nope"); }, {"nope", "not found"});

  // Header: length a multiple of 8 (space padded), tensors in declaration order, offsets contiguous.
  const std::string bytes = read_bytes(path);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  const auto header = nlohmann::ordered_json::parse(bytes.substr(8, n));
  std::vector<std::string> keys;
  for (const auto& [k, v] : header.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"__metadata__", "w.f32", "a.f16", "z.bf16", "u8", "i32", "empty"}));
  EXPECT_EQ(header["a.f16"]["data_offsets"], nlohmann::json({24, 30}));
  EXPECT_EQ(header["i32"]["data_offsets"], nlohmann::json({37, 57}));
  EXPECT_EQ(bytes.size(), 8 + n + 57);
}

TEST(Safetensors, ConcurrentWrites) {
  TempDir dir;
  const std::string path = dir.file("par.safetensors");
  constexpr int kTensors = 64;
  {
    SafetensorsWriter w(path);
    for (int i = 0; i < kTensors; ++i) w.declare("t" + std::to_string(i), DType::F32, {17 + i});
    w.begin();
    std::vector<std::thread> threads;
    for (int th = 0; th < 4; ++th) {
      threads.emplace_back([&w, th] {
        for (int i = th; i < kTensors; i += 4) {
          const std::vector<float> v = iota_of<float>(static_cast<size_t>(17 + i), static_cast<float>(i), 0.5f);
          w.write("t" + std::to_string(i), v.data(), v.size() * 4);
        }
      });
    }
    for (auto& t : threads) t.join();
    w.commit();
  }
  TensorIndex index;
  io::read_safetensors(path, &index);
  for (int i = 0; i < kTensors; ++i)
    ASSERT_EQ(index.load_f32("t" + std::to_string(i)).data,
              iota_of<float>(static_cast<size_t>(17 + i), static_cast<float>(i), 0.5f));
}

TEST(Safetensors, OutputIsAtomic) {
  TempDir dir;
  const std::string path = dir.file("out.safetensors");
  const std::vector<float> v = {1, 2};
  {
    SafetensorsWriter w(path);
    w.declare("a", DType::F32, {2});
    w.declare("b", DType::F32, {2});
    w.begin();
    w.write("a", v.data(), 8);
    EXPECT_EQ(dir_entries(dir.path()).size(), 1u);  // only the temporary exists while writing
    EXPECT_FALSE(std::filesystem::exists(path));
    expect_error([&] { w.commit(); }, {"out.safetensors", "tensor b was declared but never written"});
  }
  EXPECT_TRUE(dir_entries(dir.path()).empty());  // the failed writer left nothing behind
  {
    SafetensorsWriter w(path);
    w.declare("a", DType::F32, {2});
    w.begin();
    w.write("a", v.data(), 8);
    w.commit();
  }
  EXPECT_EQ(dir_entries(dir.path()), (std::vector<std::string>{"out.safetensors"}));  // and no temporary
}

TEST(Safetensors, WriterRejectsMisuse) {
  TempDir dir;
  SafetensorsWriter w(dir.file("m.safetensors"));
  w.declare("a", DType::F16, {2, 2});
  expect_error([&] { w.declare("a", DType::F16, {1}); }, {"m.safetensors", "declared twice"});
  expect_error([&] { w.declare("neg", DType::F16, {-1}); }, {"m.safetensors", "negative dimension"});
  expect_error([&] { w.write("a", "12345678", 8); }, {"m.safetensors", "before begin"});
  w.begin();
  expect_error([&] { w.declare("late", DType::F32, {1}); }, {"m.safetensors", "after begin"});
  expect_error([&] { w.write("a", "123456", 6); }, {"m.safetensors", "tensor a", "got 6 bytes", "is 8 bytes"});
  expect_error([&] { w.write("b", "12345678", 8); }, {"m.safetensors", "tensor b was not declared"});
  w.write("a", "12345678", 8);
  expect_error([&] { w.write("a", "12345678", 8); }, {"m.safetensors", "written twice"});
}

struct BadCase {
  const char* what;
  std::string bytes;
  std::vector<std::string> phrases;
};

TEST(Safetensors, ReaderRejectsLyingFiles) {
  const std::string ok48(48, '\0');
  const std::vector<BadCase> cases = {
      {"short", "abc", {"file is 3 bytes, too short"}},
      {"header beyond file", le_bytes<uint64_t>(999999) + "{}", {"header length 999999 exceeds file size 10"}},
      {"huge header length", le_bytes<uint64_t>(~0ull) + "{}", {"exceeds file size"}},
      {"bad json", st_file("{\"a\": {", ok48), {"header is not valid JSON"}},
      {"not utf8", st_file("{\"\xff\": 1}", ""), {"header is not valid JSON"}},
      {"array header", st_file("[]", ""), {"header is not a JSON object"}},
      {"entry not object", st_file(R"({"foo": 3})", ""), {"tensor foo", "needs dtype, shape and data_offsets"}},
      {"unknown dtype", st_file(R"({"foo": {"dtype": "F8_E9", "shape": [2], "data_offsets": [0, 2]}})", "ab"),
       {"tensor foo", "unknown dtype 'F8_E9'"}},
      {"dtype not string", st_file(R"({"foo": {"dtype": 4, "shape": [2], "data_offsets": [0, 2]}})", "ab"),
       {"tensor foo", "dtype is not a string"}},
      {"byte mismatch", st_file(R"({"foo": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 40]}})", ok48),
       {"tensor foo", "shape [3, 4] x F32 needs 48 bytes, data_offsets give 40"}},
      {"negative dim", st_file(R"({"foo": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]}})", ok48),
       {"tensor foo", "not a non-negative integer"}},
      {"float dim", st_file(R"({"foo": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", ok48),
       {"tensor foo", "not a non-negative integer"}},
      {"shape overflow",
       st_file(R"({"foo": {"dtype": "F32", "shape": [4294967296, 4294967296, 16], "data_offsets": [0, 0]}})", ""),
       {"tensor foo", "overflows"}},
      {"outside data", st_file(R"({"foo": {"dtype": "F32", "shape": [12], "data_offsets": [8, 56]}})", ok48),
       {"tensor foo", "data_offsets [8, 56] lie outside the data block (48 bytes)"}},
      {"out of order", st_file(R"({"foo": {"dtype": "F32", "shape": [0], "data_offsets": [40, 20]}})", ok48),
       {"tensor foo", "data_offsets [40, 20] are out of order"}},
      {"offsets not pair", st_file(R"({"foo": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", ok48),
       {"tensor foo", "is not a pair of non-negative integers"}},
      {"overlap",
       st_file(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                   "b": {"dtype": "F32", "shape": [4], "data_offsets": [12, 28]}})",
               ok48),
       {"tensors a [0, 16] and b [12, 28] overlap"}},
      {"metadata not strings", st_file(R"({"__metadata__": {"k": 1}})", ""), {"__metadata__ value of 'k'"}},
      {"metadata not object", st_file(R"({"__metadata__": []})", ""), {"__metadata__ is not a JSON object"}},
  };
  TempDir dir;
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.what);
    write_bytes(dir.file("bad.safetensors"), c.bytes);
    std::vector<std::string> phrases = c.phrases;
    phrases.push_back(dir.file("bad.safetensors"));
    TensorIndex index;
    EXPECT_EQ(expect_error([&] { io::read_safetensors(dir.file("bad.safetensors"), &index); }, phrases),
              ErrorKind::Format);
  }
}

TEST(Safetensors, AcceptsGapsAndEmptyTensorsInsideOthers) {
  TempDir dir;
  const std::string path = dir.file("gaps.safetensors");
  write_bytes(path, st_file(R"({"a": {"dtype": "U8", "shape": [2], "data_offsets": [4, 6]},
                                "e": {"dtype": "F32", "shape": [0], "data_offsets": [5, 5]}})",
                            "xxxxAB"));
  TensorIndex index;
  io::read_safetensors(path, &index);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(index.raw("a")), 2), "AB");
  EXPECT_EQ(index.at("e").nbytes, 0u);
}

TEST(Safetensors, TruncatedFiles) {
  TempDir dir;
  const std::string path = dir.file("full.safetensors");
  {
    SafetensorsWriter w(path);
    w.declare("a", DType::F32, {4});
    w.declare("b", DType::BF16, {8});
    w.begin();
    const std::vector<float> a = {1, 2, 3, 4};
    const std::vector<uint16_t> b(8, 0x3f80);
    w.write("a", a.data(), 16);
    w.write("b", b.data(), 16);
    w.commit();
  }
  const std::string full = read_bytes(path);
  const size_t header_end = full.size() - 32;
  struct Cut { size_t at; const char* phrase; };
  for (const Cut& c : {Cut{0, "too short"}, Cut{5, "too short"}, Cut{8, "exceeds file size"},
                       Cut{header_end / 2, "exceeds file size"}, Cut{header_end - 1, "exceeds file size"},
                       Cut{header_end, "lie outside the data block"}, Cut{header_end + 20, "tensor b"},
                       Cut{full.size() - 1, "tensor b"}}) {
    SCOPED_TRACE("cut at " + std::to_string(c.at));
    write_bytes(dir.file("cut.safetensors"), full.substr(0, c.at));
    TensorIndex index;
    expect_error([&] { io::read_safetensors(dir.file("cut.safetensors"), &index); }, {"cut.safetensors", c.phrase});
  }
}

TEST(Safetensors, NonFiniteWeightsOnLoad) {
  TempDir dir;
  const std::string path = dir.file("nan.safetensors");
  {
    SafetensorsWriter w(path);
    w.declare("w", DType::F32, {2, 2});
    w.declare("h", DType::F16, {2});
    w.begin();
    const std::vector<float> v = {0.0f, 1.0f, 2.0f, std::numeric_limits<float>::quiet_NaN()};
    const std::vector<uint16_t> h = {0x3c00, 0xfc00};  // 1, -inf
    w.write("w", v.data(), 16);
    w.write("h", h.data(), 4);
    w.commit();
  }
  TensorIndex index;
  io::read_safetensors(path, &index);
  EXPECT_EQ(index.at("w").shape, (Shape{2, 2}));  // reading is lazy: the NaN only matters on load
  expect_error([&] { index.load_f32("w"); }, {"nan.safetensors", "tensor w", "element 3 is nan"});
  expect_error([&] { index.load_f32("h"); }, {"nan.safetensors", "tensor h", "element 1 is -inf"});
}

TEST(Safetensors, DuplicateNamesAcrossFiles) {
  TempDir dir;
  for (const char* name : {"one.safetensors", "two.safetensors"}) {
    SafetensorsWriter w(dir.file(name));
    w.declare("shared", DType::U8, {1});
    w.begin();
    w.write("shared", "x", 1);
    w.commit();
  }
  TensorIndex index;
  io::read_safetensors(dir.file("one.safetensors"), &index);
  expect_error([&] { io::read_safetensors(dir.file("two.safetensors"), &index); },
               {"two.safetensors", "tensor shared is also in", "one.safetensors"});
}

}  // namespace
}  // namespace lords::test
