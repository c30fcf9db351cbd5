// ΔW spectra of fine-tuning results, on synthetic checkpoints the tests write with exact values:
// a LoRDS update B'A' − BA of rank 2 on constant codes has exactly 2 singular values above
// rounding, and becomes full rank on random codes (the paper's Fig. 3 claim in miniature); QLoRA
// adapters of rank 3 and a dense model W_hat + UV^T of rank 5 show exactly those ranks. The SVG is
// well-formed; every inconsistent input is one error naming its file.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <sstream>

#include "common/random_model.h"
#include "common/temp_dir.h"
#include "common/tiny_checkpoint.h"
#include "lords/core/error.h"
#include "lords/engine/delta_spectrum.h"
#include "lords/engine/spectrum_plot.h"
#include "lords/io/safetensors.h"

namespace fs = std::filesystem;

namespace lords::engine {
namespace {

constexpr const char* kLayer =
    "model.layers.0.mlp.up_proj.weight";  // (160, 64) in the random config
constexpr int64_t N = 160, K = 64, R = 4;

// Random multiples of 2^-bits in [-1, 1): sums and small products of these are exact in fp32.
std::vector<float> dyadic(size_t n, uint32_t seed, int bits) {
  std::mt19937 rng(seed);
  std::vector<float> v(n);
  for (float& x : v)
    x = std::ldexp(static_cast<float>(static_cast<int32_t>(rng() % (2u << bits)) - (1 << bits)),
                   -bits);
  return v;
}

// C (n, k) = B (n, r) A (r, k), naive fp64.
std::vector<double> product(
    const std::vector<float>& B, const std::vector<float>& A, int64_t n, int64_t r, int64_t k) {
  std::vector<double> C(static_cast<size_t>(n * k), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < r; ++j)
      for (int64_t c = 0; c < k; ++c) C[i * k + c] += double(B[i * r + j]) * double(A[j * k + c]);
  return C;
}

double fro(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

// B' = B + U M: a rank-2 change of B (N, R), exact in fp32.
std::vector<float> rank2_change(const std::vector<float>& B) {
  const std::vector<float> U = dyadic(N * 2, 11, 3), M = dyadic(2 * R, 12, 3);
  std::vector<float> out = B;
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < R; ++j) out[i * R + j] += U[i * 2] * M[j] + U[i * 2 + 1] * M[R + j];
  return out;
}

std::vector<uint8_t> random_codes(uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> c(N * K);
  for (uint8_t& x : c) x = static_cast<uint8_t>(rng() % 16);
  return c;
}

class DeltaSpectrum : public ::testing::Test {
 protected:
  // base and tuned LoRDS checkpoints sharing codes, tuned with B' = B + rank-2 change.
  void write_lords_pair(const std::vector<uint8_t>& codes) {
    fs::create_directory(tmp_.file("base"));
    fs::create_directory(tmp_.file("tuned"));
    B_ = dyadic(N * R, 1, 10);
    A_ = dyadic(R * K, 2, 10);
    test::write_tiny_checkpoint(tmp_.file("base"),
                                {test::tiny_lords_layer(kLayer, N, K, codes, B_, A_, R)});
    test::write_tiny_checkpoint(
        tmp_.file("tuned"), {test::tiny_lords_layer(kLayer, N, K, codes, rank2_change(B_), A_, R)});
  }
  void expect_error(const std::function<void()>& f, const std::vector<std::string>& phrases) {
    try {
      f();
      ADD_FAILURE() << "no error; expected " << phrases[0];
    } catch (const Error& e) {
      const std::string msg = e.what();
      for (const std::string& p : phrases)
        EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
  test::TempDir tmp_;
  std::vector<float> B_, A_;
};

TEST_F(DeltaSpectrum, LordsUpdateOnConstantCodesHasExactlyItsRank) {
  write_lords_pair(std::vector<uint8_t>(N * K, 15));  // NF4 level 15 = 1.0: levels[Q] is all ones
  const Checkpoint base(tmp_.file("base"));
  const Delta d = load_delta(base, tmp_.file("tuned"), "blk.0.ffn_up");
  EXPECT_EQ(d.kind, DeltaKind::Lords);
  EXPECT_EQ(d.layer, kLayer);
  EXPECT_EQ(d.adapter_rank, R);
  std::vector<double> want = product(rank2_change(B_), A_, N, R, K);
  const std::vector<double> old = product(B_, A_, N, R, K);
  for (size_t i = 0; i < want.size(); ++i) want[i] -= old[i];
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(d.dW[i], want[i], 1e-12) << i;
  const Spectrum s = delta_spectrum(d, "peft", tmp_.file("tuned"));
  ASSERT_EQ(s.sigma.size(), static_cast<size_t>(K));
  EXPECT_EQ(s.numerical_rank, 2);
  EXPECT_LE(s.rank99, 2);
  EXPECT_LT(s.sigma[2] / s.sigma[0], 1e-12);
  EXPECT_NEAR(s.fro, fro(want), 1e-9 * fro(want));
  EXPECT_NEAR(s.stable_rank,
              (s.sigma[0] * s.sigma[0] + s.sigma[1] * s.sigma[1]) / (s.sigma[0] * s.sigma[0]),
              1e-9);
  for (size_t i = 1; i < s.sigma.size(); ++i) EXPECT_LE(s.sigma[i], s.sigma[i - 1]);
}

TEST_F(DeltaSpectrum, LordsUpdateOnRandomCodesIsFullRank) {
  write_lords_pair(random_codes(5));
  const Checkpoint base(tmp_.file("base"));
  const Spectrum s = delta_spectrum(load_delta(base, tmp_.file("tuned"), kLayer), "peft", "");
  EXPECT_EQ(s.numerical_rank, K);
  EXPECT_GT(s.rank99, 2 * R);  // beyond rank(B'A' - BA) <= 2r
}

TEST_F(DeltaSpectrum, QloraAdaptersHaveRankR) {
  const int64_t G = 32, r = 3;
  fs::create_directory(tmp_.file("base"));
  fs::create_directory(tmp_.file("qlora"));
  const test::TinyLayer layer =
      test::tiny_rtn_layer(kLayer, N, K, G, random_codes(3), dyadic(N * 2, 4, 8));
  test::write_tiny_checkpoint(tmp_.file("base"), {layer});
  test::write_tiny_checkpoint(tmp_.file("qlora"), {layer});
  const std::vector<float> A = test::uniform_floats(r * K, 6), B = test::uniform_floats(N * r, 7);
  const Checkpoint base(tmp_.file("base"));
  // Our metadata names (lora.rank, lora.alpha) and peft's (lora_rank, lora_alpha) read the same.
  for (test::AdapterKeys keys : {test::AdapterKeys::Lords, test::AdapterKeys::Peft}) {
    test::write_lora_adapters(tmp_.file("qlora"), {kLayer, A, B, N, K, r, 6.0, keys});
    const Delta d = load_delta(base, tmp_.file("qlora"), kLayer);
    EXPECT_EQ(d.kind, DeltaKind::Lora);
    EXPECT_EQ(d.adapter_rank, r);
    const Spectrum s = delta_spectrum(d, "qlora", tmp_.file("qlora"));
    EXPECT_EQ(s.numerical_rank, r);
    EXPECT_EQ(s.rank99, r);
    EXPECT_NEAR(s.fro, 2.0 * fro(product(B, A, N, r, K)), 1e-9 * s.fro);  // alpha / r = 2
  }

  // The adapters must sit on BASE's layer exactly: other scales in the directory's checkpoint are
  // refused.
  const test::TinyLayer other =
      test::tiny_rtn_layer(kLayer, N, K, G, random_codes(3), dyadic(N * 2, 99, 8));
  fs::remove(tmp_.file("qlora/model.safetensors"));
  test::write_tiny_checkpoint(tmp_.file("qlora"), {other});
  expect_error([&] { load_delta(base, tmp_.file("qlora"), kLayer); },
               {"qlora/model.safetensors", ".qscales' differs from", "base/model.safetensors"});
  fs::remove(tmp_.file("qlora/model.safetensors"));  // no base copy: nothing to check
  test::write_lora_adapters(tmp_.file("qlora"),
                            {kLayer, test::uniform_floats(r * (K + 1), 6), B, N, K + 1, r, 6.0});
  expect_error([&] { load_delta(base, tmp_.file("qlora"), kLayer); },
               {"adapters.safetensors", "lora_A' has shape [3, 65], expected [r, 64]"});
  test::write_lora_adapters(tmp_.file("qlora"),
                            {"model.layers.1.mlp.up_proj.weight", A, B, N, K, r, 6.0});
  expect_error([&] { load_delta(base, tmp_.file("qlora"), kLayer); },
               {"adapters.safetensors", "no LoRA adapter for 'model.layers.0.mlp.up_proj.weight'"});
}

// Replaces one F32 tensor of a safetensors file.
void replace_tensor(const std::string& path,
                    const std::string& name,
                    const std::vector<float>& values) {
  const std::string copy = path + ".orig";
  fs::rename(path, copy);
  {
    io::TensorIndex index;
    const auto meta = io::read_safetensors(copy, &index);
    io::SafetensorsWriter w(path);
    w.set_metadata(meta);
    for (const auto& n : index.names()) w.declare(n, DType::F32, index.at(n).shape);
    w.begin();
    for (const auto& n : index.names()) {
      if (n == name)
        w.write(n, values.data(), values.size() * sizeof(float));
      else
        w.write(n, index.raw(n), index.at(n).nbytes);
    }
    w.commit();
  }
  fs::remove(copy);
}

TEST_F(DeltaSpectrum, DenseTunedModelShowsItsUpdateRank) {
  const std::vector<uint8_t> codes = random_codes(8);
  write_lords_pair(codes);
  const quant::Codebook cb = quant::make_codebook(quant::CodebookKind::NF, 4);
  std::vector<double> w_hat = product(B_, A_, N, R, K);
  for (size_t i = 0; i < w_hat.size(); ++i) w_hat[i] *= cb.levels[codes[i]];
  const std::vector<double> uv =
      product(test::uniform_floats(N * 5, 9), test::uniform_floats(5 * K, 10), N, 5, K);
  std::vector<float> tuned(w_hat.size());
  for (size_t i = 0; i < tuned.size(); ++i) tuned[i] = static_cast<float>(w_hat[i] + uv[i]);
  fs::create_directory(tmp_.file("dense"));
  test::write_random_model(tmp_.file("dense"), {});
  replace_tensor(tmp_.file("dense/model.safetensors"), kLayer, tuned);
  const Checkpoint base(tmp_.file("base"));
  const Spectrum s = delta_spectrum(load_delta(base, tmp_.file("dense"), kLayer), "full", "");
  EXPECT_EQ(s.kind, DeltaKind::Dense);
  EXPECT_EQ(s.numerical_rank, 5);
  EXPECT_NEAR(s.fro, fro(uv), 1e-5 * fro(uv));  // fp32 storage of W_tuned
}

TEST_F(DeltaSpectrum, InconsistentInputsNameTheFile) {
  const std::vector<uint8_t> codes = random_codes(8);
  write_lords_pair(codes);
  const Checkpoint base(tmp_.file("base"));
  expect_error([&] { resolve_layer(base, "blk.0.attn_q"); },
               {"base/model.safetensors", "no quantized layer 'blk.0.attn_q'", kLayer});
  EXPECT_EQ(resolve_layer(base, "model.layers.0.mlp.up_proj"), kLayer);
  expect_error([&] { load_delta(base, tmp_.file("missing"), kLayer); },
               {"missing", "no such file"});
  // Tuned codes differ in one place.
  std::vector<uint8_t> changed = codes;
  changed[100] = static_cast<uint8_t>((changed[100] + 1) % 16);
  fs::remove_all(tmp_.file("tuned"));
  fs::create_directory(tmp_.file("tuned"));
  test::write_tiny_checkpoint(tmp_.file("tuned"),
                              {test::tiny_lords_layer(kLayer, N, K, changed, B_, A_, R)});
  expect_error([&] { load_delta(base, tmp_.file("tuned"), kLayer); },
               {"tuned/model.safetensors", "1 of 10240 codes", "base/model.safetensors"});
  // Tuned layer of another shape.
  fs::remove_all(tmp_.file("tuned"));
  fs::create_directory(tmp_.file("tuned"));
  test::write_tiny_checkpoint(
      tmp_.file("tuned"),
      {test::tiny_lords_layer(
          kLayer, 32, K, std::vector<uint8_t>(32 * K, 1), dyadic(32 * R, 1, 10), A_, R)});
  expect_error([&] { load_delta(base, tmp_.file("tuned"), kLayer); },
               {"tuned/model.safetensors", "shape [32, 64], expected [160, 64]"});
  // A LoRDS TUNED against an RTN base.
  fs::create_directory(tmp_.file("rtn"));
  test::write_tiny_checkpoint(tmp_.file("rtn"),
                              {test::tiny_rtn_layer(kLayer, N, K, 32, codes, dyadic(N * 2, 4, 8))});
  const Checkpoint rtn(tmp_.file("rtn"));
  expect_error([&] { load_delta(rtn, tmp_.file("base"), kLayer); },
               {"rtn/model.safetensors", "method rtn"});
}

TEST(SingularValues, KnownDiagonal) {
  std::vector<double> A = {
      0, 0, 2, 3, 0, 0, 0, 0, 0, 0, -1, 0};  // (4, 3): 2, 3, -1 on a permuted diagonal
  const std::vector<double> s = singular_values(A, 4, 3);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_NEAR(s[0], 3, 1e-14);
  EXPECT_NEAR(s[1], 2, 1e-14);
  EXPECT_NEAR(s[2], 1, 1e-14);
}

// Checks that tags nest and entities are escaped; returns the number of each element.
std::map<std::string, int> xml_elements(const std::string& s) {
  std::map<std::string, int> count;
  std::vector<std::string> stack;
  size_t i = 0;
  while ((i = s.find('<', i)) != std::string::npos) {
    const size_t j = s.find('>', i);
    EXPECT_NE(j, std::string::npos);
    if (j == std::string::npos) break;
    const std::string tag = s.substr(i + 1, j - i - 1);
    i = j + 1;
    if (tag[0] == '?') continue;  // the XML declaration
    if (tag[0] == '/') {
      EXPECT_FALSE(stack.empty()) << tag;
      if (stack.empty()) continue;
      EXPECT_EQ("/" + stack.back(), tag);
      stack.pop_back();
      continue;
    }
    const std::string name = tag.substr(0, tag.find_first_of(" /\n"));
    ++count[name];
    if (tag.back() != '/') stack.push_back(name);
  }
  EXPECT_TRUE(stack.empty()) << stack.size() << " unclosed";
  for (size_t a = s.find('&'); a != std::string::npos; a = s.find('&', a + 1)) {
    const std::string rest = s.substr(a, 7);
    EXPECT_TRUE(rest.rfind("&amp;", 0) == 0 || rest.rfind("&lt;", 0) == 0 ||
                rest.rfind("&gt;", 0) == 0 || rest.rfind("&quot;", 0) == 0 ||
                rest.rfind("&apos;", 0) == 0 || rest.rfind("&#", 0) == 0)
        << rest;
  }
  return count;
}

TEST(SpectrumPlot, SvgIsWellFormed) {
  Delta low{DeltaKind::Lords, kLayer, 6, 4, 1, {}};
  low.dW = {1, 2, 3, 4, 2, 4, 6, 8, 0, 0, 0, 0, 1, 2, 3, 4, 3, 6, 9, 12, 1, 2, 3, 4};  // rank 1
  Delta full = low;
  full.dW = {1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 3, 0, 0, 0, 0, 4, 1, 1, 1, 1, 0, 0, 0, 0};
  Delta zero = low;
  zero.dW.assign(24, 0.0);
  const std::vector<Spectrum> spectra = {delta_spectrum(low, "a<b&c", ""),
                                         delta_spectrum(full, "full", ""),
                                         delta_spectrum(zero, "same", "")};
  EXPECT_EQ(spectra[0].numerical_rank, 1);
  EXPECT_EQ(spectra[1].numerical_rank, 4);
  EXPECT_EQ(spectra[2].numerical_rank, 0);
  const std::string svg = spectrum_svg(spectra, "Singular values of \u0394W: layer \"x\"");
  ASSERT_EQ(svg.rfind("<?xml", 0), 0u);
  const std::map<std::string, int> count = xml_elements(svg);
  EXPECT_EQ(count.at("svg"), 1);
  EXPECT_EQ(count.at("polyline"), 2);  // no curve for dW = 0
  EXPECT_EQ(count.at("title"), 1);
  EXPECT_GE(count.at("text"), 3 + 2 + 3);  // legend entries, axis labels, tick labels
  EXPECT_NE(svg.find("a&lt;b&amp;c (lords, adapter rank 1, r99 1, numerical rank 1"),
            std::string::npos);
  EXPECT_NE(svg.find("same (dW = 0)"), std::string::npos);
  EXPECT_NE(svg.find("layer &quot;x&quot;"), std::string::npos);
  // Every curve point lies inside the canvas.
  for (size_t p = svg.find("points=\""); p != std::string::npos; p = svg.find("points=\"", p + 1)) {
    const std::string pts = svg.substr(p + 8, svg.find('"', p + 8) - p - 8);
    std::istringstream in(pts);
    double x = 0, y = 0;
    char comma = 0;
    int n = 0;
    while (in >> x >> comma >> y) {
      EXPECT_TRUE(x >= 0 && x <= 760 && y >= 0 && y <= 550) << x << "," << y;
      ++n;
    }
    EXPECT_EQ(n, 4);
  }
}

}  // namespace
}  // namespace lords::engine
