// GGUF reader tests: dequantization of every supported type (plain and 32-element block types against
// values computed by hand from the format definition, K-quants against gguf-py reference values in
// tests/io/fixtures, made by scripts/make_gguf_fixtures.py), metadata of every value type, and files
// that lie: truncated, bad magic, data outside the file, unsupported types, n_dims > 4, huge lengths.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "common/temp_dir.h"
#include "io/gguf_builder.h"
#include "lords/core/dtype.h"
#include "lords/io/gguf.h"

namespace lords::test {
namespace {

using io::TensorIndex;

std::string u16_bytes(const std::vector<uint16_t>& v) {
  std::string s;
  for (uint16_t x : v) s += le_bytes(x);
  return s;
}

// Writes bytes to dir/name and returns the path.
std::string put(const TempDir& dir, const std::string& name, const std::string& bytes) {
  write_bytes(dir.file(name), bytes);
  return dir.file(name);
}

// Reads the file and loads one tensor as fp32.
HostTensor load_one(const std::string& path, const std::string& name) {
  TensorIndex index;
  io::read_gguf(path, &index);
  return index.load_f32(name);
}

GgufBuilder one_tensor(uint32_t type, std::vector<uint64_t> ne, std::string data) {
  GgufBuilder b;
  b.tensor({"t", std::move(ne), type, std::move(data), std::nullopt});
  return b;
}

TEST(Gguf, TypeTableMatchesGgml) {
  struct Row { const char* name; uint32_t id; int64_t elems, bytes; };
  for (const Row& r : {Row{"F32", kF32, 1, 4}, Row{"F16", kF16, 1, 2}, Row{"BF16", kBF16, 1, 2},
                       Row{"Q8_0", kQ8_0, 32, 34}, Row{"Q4_0", kQ4_0, 32, 18}, Row{"Q4_1", kQ4_1, 32, 20},
                       Row{"Q4_K", kQ4_K, 256, 144}, Row{"Q5_K", kQ5_K, 256, 176}, Row{"Q6_K", kQ6_K, 256, 210}}) {
    const io::GgmlTypeTraits* t = io::ggml_type_traits(r.id);
    ASSERT_NE(t, nullptr) << r.name;
    EXPECT_EQ(t->name, r.name);
    EXPECT_EQ(t->block_elems, r.elems) << r.name;
    EXPECT_EQ(t->block_bytes, r.bytes) << r.name;
    EXPECT_EQ(io::ggml_type_traits(r.name), t);
  }
  EXPECT_EQ(io::ggml_type_traits(kQ5_0), nullptr);
  EXPECT_EQ(io::ggml_type_traits("Q2_K"), nullptr);
}

TEST(Gguf, PlainTypesAndShapeOrder) {
  TempDir dir;
  const std::vector<float> f32 = {1.5f, -2.25f, 0.0f, 3e-8f, 1e30f, -7.0f};
  // fp16: 1, -2, 0.5, 65504 (max), 2^-24 (smallest subnormal), -0.
  const std::vector<uint16_t> f16 = {0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000};
  // bf16: 1, -3, 3.140625, 2^-133 (subnormal), 65536, -0.5.
  const std::vector<uint16_t> bf16 = {0x3f80, 0xc040, 0x4049, 0x0001, 0x4780, 0xbf00};
  GgufBuilder b;
  b.tensor({"a", {3, 2}, kF32, f32_bytes(f32), std::nullopt});
  b.tensor({"h", {6}, kF16, u16_bytes(f16), std::nullopt});
  b.tensor({"b", {2, 1, 3}, kBF16, u16_bytes(bf16), std::nullopt});
  const std::string path = put(dir, "plain.gguf", b.build());
  TensorIndex index;
  io::read_gguf(path, &index);
  EXPECT_EQ(index.at("a").shape, (Shape{2, 3}));  // ne = [3, 2] innermost first
  EXPECT_EQ(index.at("b").shape, (Shape{3, 1, 2}));
  EXPECT_EQ(index.at("a").dtype, "F32");
  EXPECT_EQ(index.at("h").dtype, "F16");
  EXPECT_EQ(index.at("b").dtype, "BF16");
  EXPECT_EQ(index.load_f32("a").data, f32);
  EXPECT_EQ(index.load_f32("h").data, (std::vector<float>{1.0f, -2.0f, 0.5f, 65504.0f, std::ldexp(1.0f, -24), -0.0f}));
  EXPECT_EQ(index.load_f32("b").data,
            (std::vector<float>{1.0f, -3.0f, 3.140625f, std::ldexp(1.0f, -133), 65536.0f, -0.5f}));
  EXPECT_TRUE(std::signbit(index.load_f32("h").data[5]));
}

// Four 32-element blocks (a 2 x 64 tensor) with scales d = 0.5, 1, 1.5, 2.
constexpr uint16_t kBlockD[4] = {0x3800, 0x3c00, 0x3e00, 0x4000};
constexpr float kBlockDf[4] = {0.5f, 1.0f, 1.5f, 2.0f};

TEST(Gguf, Q8_0) {
  std::string data;
  for (int b = 0; b < 4; ++b) {
    data += le_bytes(kBlockD[b]);
    for (int j = 0; j < 32; ++j) data += static_cast<char>(static_cast<int8_t>(8 * j - 128 + b));
  }
  TempDir dir;
  const HostTensor t = load_one(put(dir, "q8.gguf", one_tensor(kQ8_0, {64, 2}, data).build()), "t");
  ASSERT_EQ(t.shape, (Shape{2, 64}));
  for (int b = 0; b < 4; ++b)
    for (int j = 0; j < 32; ++j) ASSERT_EQ(t.data[b * 32 + j], kBlockDf[b] * static_cast<float>(8 * j - 128 + b));
  EXPECT_EQ(t.data[0], -64.0f);         // 0.5 * -128
  EXPECT_EQ(t.data[31], 60.0f);         // 0.5 * 120
  EXPECT_EQ(t.data[96 + 31], 246.0f);   // 2 * 123
}

// Nibble j of a Q4 block: element j is the low nibble of byte j, element j + 16 its high nibble.
// The test bytes are j | (15 - j) << 4, so element j holds j and element j + 16 holds 15 - j.
std::string q4_nibbles() {
  std::string s;
  for (int j = 0; j < 16; ++j) s += static_cast<char>(j | ((15 - j) << 4));
  return s;
}

float q4_nibble_of(int j) { return static_cast<float>(j < 16 ? j : 31 - j); }

TEST(Gguf, Q4_0) {
  std::string data;
  for (int b = 0; b < 4; ++b) data += le_bytes(kBlockD[b]) + q4_nibbles();
  TempDir dir;
  const HostTensor t = load_one(put(dir, "q40.gguf", one_tensor(kQ4_0, {64, 2}, data).build()), "t");
  for (int b = 0; b < 4; ++b)
    for (int j = 0; j < 32; ++j) ASSERT_EQ(t.data[b * 32 + j], kBlockDf[b] * (q4_nibble_of(j) - 8.0f)) << b << " " << j;
  EXPECT_EQ(t.data[0], -8.0f * 0.5f);
  EXPECT_EQ(t.data[15], 7.0f * 0.5f);
  EXPECT_EQ(t.data[16], 7.0f * 0.5f);
  EXPECT_EQ(t.data[127], -8.0f * 2.0f);
}

TEST(Gguf, Q4_1) {
  const uint16_t mins[4] = {0xbc00, 0x0000, 0x3c00, 0xc500};  // -1, 0, 1, -5
  const float minf[4] = {-1.0f, 0.0f, 1.0f, -5.0f};
  std::string data;
  for (int b = 0; b < 4; ++b) data += le_bytes(kBlockD[b]) + le_bytes(mins[b]) + q4_nibbles();
  TempDir dir;
  const HostTensor t = load_one(put(dir, "q41.gguf", one_tensor(kQ4_1, {64, 2}, data).build()), "t");
  for (int b = 0; b < 4; ++b)
    for (int j = 0; j < 32; ++j) ASSERT_EQ(t.data[b * 32 + j], kBlockDf[b] * q4_nibble_of(j) + minf[b]);
  EXPECT_EQ(t.data[0], -1.0f);
  EXPECT_EQ(t.data[15], 6.5f);      // 15 * 0.5 - 1
  EXPECT_EQ(t.data[96 + 5], 5.0f);  // 5 * 2 - 5
}

// The K-quant fixtures hold n blocks followed by their n * 256 reference floats.
struct KFixture {
  std::string blocks;
  std::vector<float> values;
};

KFixture read_fixture(const std::string& type) {
  std::string lower = type;
  for (char& c : lower) c = static_cast<char>(std::tolower(c));
  const std::string bytes = read_bytes(std::string(LORDS_SOURCE_DIR) + "/tests/io/fixtures/" + lower + ".bin");
  const int64_t block_bytes = io::ggml_type_traits(type)->block_bytes;
  const size_t n = bytes.size() / static_cast<size_t>(block_bytes + 256 * 4);
  EXPECT_GT(n, 0u);
  EXPECT_EQ(bytes.size(), n * static_cast<size_t>(block_bytes + 256 * 4)) << type;
  KFixture f{bytes.substr(0, n * static_cast<size_t>(block_bytes)), std::vector<float>(n * 256)};
  std::memcpy(f.values.data(), bytes.data() + f.blocks.size(), f.values.size() * 4);
  return f;
}

class GgufKQuant : public ::testing::TestWithParam<std::pair<const char*, uint32_t>> {};

TEST_P(GgufKQuant, MatchesGgufPyBitExactly) {
  const auto [type, id] = GetParam();
  const KFixture f = read_fixture(type);
  std::vector<float> out(f.values.size());
  io::gguf_dequantize(type, reinterpret_cast<const uint8_t*>(f.blocks.data()), static_cast<int64_t>(out.size()),
                      out.data());
  for (size_t i = 0; i < out.size(); ++i)
    ASSERT_EQ(std::memcmp(&out[i], &f.values[i], 4), 0) << type << " element " << i << ": " << out[i] << " vs "
                                                        << f.values[i];
  // The same blocks as a 2-block-wide tensor inside a GGUF file.
  TempDir dir;
  const uint64_t rows = f.values.size() / 512;
  const HostTensor t = load_one(put(dir, "k.gguf", one_tensor(id, {512, rows}, f.blocks).build()), "t");
  EXPECT_EQ(t.shape, (Shape{static_cast<int64_t>(rows), 512}));
  EXPECT_EQ(t.data, f.values);
}

INSTANTIATE_TEST_SUITE_P(Types, GgufKQuant,
                         ::testing::Values(std::make_pair("Q4_K", kQ4_K), std::make_pair("Q5_K", kQ5_K),
                                           std::make_pair("Q6_K", kQ6_K)),
                         [](const auto& param_info) { return std::string(param_info.param.first); });

TEST(Gguf, MetadataOfEveryValueType) {
  GgufBuilder b;
  b.version = 2;
  b.kv("u8", kGU8, le_bytes<uint8_t>(200))
      .kv("i8", kGI8, le_bytes<int8_t>(-100))
      .kv("u16", kGU16, le_bytes<uint16_t>(60000))
      .kv("i16", kGI16, le_bytes<int16_t>(-30000))
      .kv("u32", kGU32, le_bytes<uint32_t>(4000000000u))
      .kv("i32", kGI32, le_bytes<int32_t>(-2000000000))
      .kv("u64", kGU64, le_bytes<uint64_t>(18000000000000000000ull))
      .kv("i64", kGI64, le_bytes<int64_t>(-9000000000000000000ll))
      .kv("f32", kGF32, le_bytes(1e-5f))
      .kv("f64", kGF64, le_bytes(0.1))
      .kv("yes", kGBool, le_bytes<uint8_t>(1))
      .kv("no", kGBool, le_bytes<uint8_t>(0))
      .kv("str", kGString, gguf_string("héllo"))
      .kv("ints", kGArray, gguf_array(kGI32, {le_bytes<int32_t>(1), le_bytes<int32_t>(-2)}))
      .kv("strs", kGArray, gguf_array(kGString, {gguf_string("a"), gguf_string("")}))
      .kv("empty", kGArray, gguf_array(kGF32, {}))
      .kv("nested", kGArray,
          gguf_array(kGArray, {gguf_array(kGU8, {le_bytes<uint8_t>(7)}), gguf_array(kGString, {gguf_string("x")})}));
  TempDir dir;
  TensorIndex index;
  const nlohmann::json m = io::read_gguf(put(dir, "meta.gguf", b.build()), &index);
  EXPECT_TRUE(index.all().empty());
  EXPECT_EQ(m["u8"], 200);
  EXPECT_EQ(m["i8"], -100);
  EXPECT_EQ(m["u16"], 60000);
  EXPECT_EQ(m["i16"], -30000);
  EXPECT_EQ(m["u32"], 4000000000u);
  EXPECT_EQ(m["i32"], -2000000000);
  EXPECT_EQ(m["u64"].get<uint64_t>(), 18000000000000000000ull);
  EXPECT_EQ(m["i64"].get<int64_t>(), -9000000000000000000ll);
  EXPECT_EQ(static_cast<float>(m["f32"].get<double>()), 1e-5f);
  EXPECT_EQ(m["f32"].dump(), "1e-05");  // shortest decimal of the float, not 9.99999974e-06
  EXPECT_EQ(m["f64"].get<double>(), 0.1);
  EXPECT_EQ(m["yes"], true);
  EXPECT_EQ(m["no"], false);
  EXPECT_EQ(m["str"], "héllo");
  EXPECT_EQ(m["ints"], nlohmann::json({1, -2}));
  EXPECT_EQ(m["strs"], nlohmann::json({"a", ""}));
  EXPECT_EQ(m["empty"], nlohmann::json::array());
  EXPECT_EQ(m["nested"], nlohmann::json::parse(R"([[7], ["x"]])"));
}

TEST(Gguf, AlignmentKeyMovesTheDataSection) {
  GgufBuilder b;
  b.alignment = 64;
  b.kv_u32("general.alignment", 64);
  b.tensor({"t", {2}, kF32, f32_bytes({1.0f, 2.0f}), std::nullopt});
  TempDir dir;
  TensorIndex index;
  io::read_gguf(put(dir, "a.gguf", b.build()), &index);
  EXPECT_EQ(index.at("t").offset % 64, 0u);
  EXPECT_EQ(index.load_f32("t").data, (std::vector<float>{1.0f, 2.0f}));
}

// A valid file with metadata and two tensors; every proper prefix of it must be rejected cleanly.
TEST(Gguf, TruncatedAnywhere) {
  GgufBuilder b;
  b.kv_str("general.architecture", "llama").kv("toks", kGArray, gguf_array(kGString, {gguf_string("ab")}));
  b.tensor({"w", {32, 1}, kQ8_0, std::string(34, '\x01'), std::nullopt});
  b.tensor({"v", {3}, kF32, f32_bytes({1, 2, 3}), std::nullopt});
  const std::string full = b.build();
  TempDir dir;
  TensorIndex ok;
  io::read_gguf(put(dir, "full.gguf", full), &ok);
  for (size_t cut = 0; cut < full.size(); ++cut) {
    const std::string path = put(dir, "cut.gguf", full.substr(0, cut));
    TensorIndex index;
    SCOPED_TRACE("cut at " + std::to_string(cut));
    expect_error([&] { io::read_gguf(path, &index); }, {"cut.gguf"});
  }
  const std::string path = put(dir, "cut.gguf", full.substr(0, 106));  // inside the token string
  TensorIndex index;
  expect_error([&] { io::read_gguf(path, &index); }, {"cut.gguf", "truncated"});
  const std::string in_data = put(dir, "cut.gguf", full.substr(0, full.size() - 2));
  expect_error([&] { io::read_gguf(in_data, &index); }, {"cut.gguf", "tensor v", "lies outside the file"});
}

TEST(Gguf, BadMagicAndVersion) {
  TempDir dir;
  TensorIndex index;
  std::string bytes = GgufBuilder().build();
  bytes[3] = 'X';
  const std::string bad = put(dir, "magic.gguf", bytes);
  expect_error([&] { io::read_gguf(bad, &index); }, {"magic.gguf", "bad magic"});
  GgufBuilder v1;
  v1.version = 1;
  const std::string old = put(dir, "v1.gguf", v1.build());
  EXPECT_EQ(expect_error([&] { io::read_gguf(old, &index); }, {"v1.gguf", "unsupported GGUF version 1"}),
            ErrorKind::Unsupported);
}

TEST(Gguf, TensorDataOutsideTheFile) {
  TempDir dir;
  TensorIndex index;
  GgufBuilder b = one_tensor(kF32, {4}, f32_bytes({1, 2, 3, 4}));
  b.tensor({"far", {4}, kF32, "", 4096});
  const std::string path = put(dir, "far.gguf", b.build());
  expect_error([&] { io::read_gguf(path, &index); }, {"far.gguf", "tensor far", "lies outside the file"});
  // An offset near 2^64 must not wrap around into the file.
  GgufBuilder w = one_tensor(kF32, {4}, f32_bytes({1, 2, 3, 4}));
  w.tensor({"wrap", {4}, kF32, "", 0xffffffffffffffe0ull});
  const std::string wrap = put(dir, "wrap.gguf", w.build());
  TensorIndex fresh;
  expect_error([&] { io::read_gguf(wrap, &fresh); }, {"wrap.gguf", "tensor wrap", "lies outside the file"});
}

TEST(Gguf, UnsupportedTypeAndBadDims) {
  TempDir dir;
  TensorIndex index;
  const std::string q5 = put(dir, "q5.gguf", one_tensor(kQ5_0, {32}, std::string(22, '\0')).build());
  EXPECT_EQ(expect_error([&] { io::read_gguf(q5, &index); }, {"q5.gguf", "tensor t", "unsupported ggml type id 6"}),
            ErrorKind::Unsupported);
  const std::string odd = put(dir, "odd.gguf", one_tensor(999, {4}, std::string(16, '\0')).build());
  expect_error([&] { io::read_gguf(odd, &index); }, {"odd.gguf", "unsupported ggml type id 999"});
  const std::string dims5 = put(dir, "d5.gguf", one_tensor(kF32, {1, 1, 1, 1, 2}, f32_bytes({1, 2})).build());
  expect_error([&] { io::read_gguf(dims5, &index); }, {"d5.gguf", "n_dims 5 exceeds 4"});
  const std::string row = put(dir, "row.gguf", one_tensor(kQ8_0, {16, 2}, std::string(34, '\0')).build());
  expect_error([&] { io::read_gguf(row, &index); },
               {"row.gguf", "row size 16 is not a multiple of the Q8_0 block size 32"});
  const std::string big = put(dir, "big.gguf", one_tensor(kF32, {1ull << 40, 1ull << 40}, "").build());
  expect_error([&] { io::read_gguf(big, &index); }, {"big.gguf", "overflow"});
  GgufBuilder mis = one_tensor(kF32, {4}, f32_bytes({1, 2, 3, 4}));
  mis.tensor({"mis", {1}, kF32, "", 4});
  const std::string misaligned = put(dir, "mis.gguf", mis.build());
  expect_error([&] { io::read_gguf(misaligned, &index); }, {"mis.gguf", "offset 4 is not a multiple of 32"});
}

TEST(Gguf, LyingLengthsAndValues) {
  TempDir dir;
  TensorIndex index;
  auto fails = [&](const GgufBuilder& b, const std::string& phrase) {
    const std::string path = put(dir, "lie.gguf", b.build());
    expect_error([&] { io::read_gguf(path, &index); }, {"lie.gguf", phrase});
  };
  fails(GgufBuilder().kv("s", kGString, le_bytes<uint64_t>(1ull << 62) + "abc"), "truncated");
  const std::string remaining = "exceeds the remaining";
  fails(GgufBuilder().kv("a", kGArray, le_bytes<uint32_t>(kGU64) + le_bytes<uint64_t>(1ull << 61)), remaining);
  fails(GgufBuilder().kv("a", kGArray, le_bytes<uint32_t>(kGString) + le_bytes<uint64_t>(~0ull)), remaining);
  fails(GgufBuilder().kv("x", 13, le_bytes<uint32_t>(0)), "unknown value type 13");
  fails(GgufBuilder().kv("a", kGArray, gguf_array(77, {})), "unknown array element type 77");
  fails(GgufBuilder().kv_u32("k", 1).kv_u32("k", 2), "duplicate metadata key k");
  fails(GgufBuilder().kv_u32("general.alignment", 24), "general.alignment 24 is not an unsigned power of two");
  std::string deep = gguf_array(kGU8, {});
  for (int i = 0; i < 40; ++i) deep = gguf_array(kGArray, {deep});
  fails(GgufBuilder().kv("deep", kGArray, deep), "nested deeper");
  // Tensor and key counts far beyond what the file can hold.
  std::string counts = GgufBuilder().build();
  std::memcpy(&counts[8], "\xff\xff\xff\xff\xff\xff\xff\x7f", 8);
  const std::string path = put(dir, "counts.gguf", counts);
  expect_error([&] { io::read_gguf(path, &index); }, {"counts.gguf", "cannot fit"});
}

TEST(Gguf, NonFiniteWeightsRejectedOnLoad) {
  TempDir dir;
  GgufBuilder b = one_tensor(kF32, {3}, f32_bytes({1.0f, std::numeric_limits<float>::infinity(), 0.0f}));
  std::string q8 = le_bytes<uint16_t>(0x7e00) + std::string(32, '\x01');  // d = NaN
  b.tensor({"q", {32}, kQ8_0, q8, std::nullopt});
  const std::string path = put(dir, "nan.gguf", b.build());
  TensorIndex index;
  io::read_gguf(path, &index);
  expect_error([&] { index.load_f32("t"); }, {"nan.gguf", "tensor t", "element 1 is inf"});
  expect_error([&] { index.load_f32("q"); }, {"nan.gguf", "tensor q", "element 0 is nan"});
}

TEST(Gguf, DequantizeRejectsPartialBlocksAndUnknownTypes) {
  std::vector<float> out(64);
  const std::vector<uint8_t> src(64 * 4);
  expect_error([&] { io::gguf_dequantize("Q8_0", src.data(), 40, out.data()); }, {"Q8_0", "40 elements"});
  expect_error([&] { io::gguf_dequantize("Q2_K", src.data(), 256, out.data()); }, {"Q2_K"});
}

}  // namespace
}  // namespace lords::test
