// Helpers of the quantized-linear gradient tests: a seeded quantized weight held both as the cpu
// kernels see it (ops::QWeight, packed codes, fp32) and as the fp64 reference sees it
// (ref::UnpackedWeight<double>, the same values widened), central finite differences, and the
// max-norm relative error used for cpu-vs-ref comparisons.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "lords/quant/blockwise.h"
#include "lords/quant/codebook.h"
#include "lords/quant/pack.h"
#include "lords/train/qlinear_common.h"

namespace lords::train::test {

using VecF = std::vector<float>;
using VecD = std::vector<double>;

inline VecF normal_vec(int64_t n, uint32_t seed, float sd = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sd);
  VecF v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

inline VecD widen(const VecF& v) {
  return VecD(v.begin(), v.end());
}

// Positive values in [lo, lo + width): scale factors like the absmax statistics they replace.
inline VecF positive_vec(int64_t n, uint32_t seed, float lo, float width) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, lo + width);
  VecF v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// A quantized weight: NF codebook levels, random codes, and B, A (LowRank) or block scales.
struct QData {
  ops::QScaleKind kind = ops::QScaleKind::LowRank;
  int64_t N = 0, K = 0, r = 0, G = 0;
  int bits = 4;
  std::vector<uint8_t> codes, packed;  // (N, K), (N, packed_row_bytes)
  VecF levels, B, A, scales;
  VecD levels_d, B_d, A_d, scales_d;

  ops::QWeight q() const {
    return train::qweight_view<ops::QWeight>(kind, N, K, bits, packed, levels, r, B, A, G, scales);
  }
  ref::UnpackedWeight<double> u() const {
    return train::qweight_view<ref::UnpackedWeight<double>>(kind, N, K, bits, codes, levels_d, r, B_d, A_d, G,
                                                            scales_d);
  }
};

// rg: the rank r (LowRank) or the block size G (Block). Signed B and A: S = B A changes sign and
// cancels, the general case for the backward.
inline QData make_qdata(
    ops::QScaleKind kind, int64_t N, int64_t K, int64_t rg, int bits, uint32_t seed) {
  QData d;
  d.kind = kind;
  d.N = N;
  d.K = K;
  d.bits = bits;
  d.levels = quant::make_codebook(quant::CodebookKind::NF, bits).levels;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(0, (1 << bits) - 1);
  d.codes.resize(static_cast<size_t>(N * K));
  for (uint8_t& c : d.codes) c = static_cast<uint8_t>(code(rng));
  d.packed = quant::pack_codes(d.codes.data(), N, K, bits);
  if (kind == ops::QScaleKind::LowRank) {
    d.r = rg;
    d.B = normal_vec(N * rg, seed + 1);
    d.A = normal_vec(rg * K, seed + 2, 1.0f / std::sqrt(static_cast<float>(rg)));
  } else {
    d.G = rg;
    d.scales = positive_vec(N * quant::num_blocks(K, rg), seed + 3, 0.05f, 1.0f);
  }
  d.levels_d = widen(d.levels);
  d.B_d = widen(d.B);
  d.A_d = widen(d.A);
  d.scales_d = widen(d.scales);
  return d;
}

inline double dot(const VecD& a, const VecD& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// d loss / d p[i] by central differences, p restored after each probe. Every loss in these tests is
// linear in each single parameter (W_hat is bilinear in B, A; Y linear in X), so the difference is
// exact up to rounding, ~ eps |loss| / h: h = 1e-3 keeps that near 1e-12.
inline VecD fd_grad(VecD& p, const std::function<double()>& loss, double h = 1e-3) {
  VecD g(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    const double keep = p[i];
    p[i] = keep + h;
    const double up = loss();
    p[i] = keep - h;
    const double down = loss();
    p[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

// max_i |got_i - want_i| / max_i |want_i| (NaN counts as infinitely wrong); worst gets the index.
template <class G>
double max_rel_err(const G* got, const VecD& want, size_t* worst = nullptr) {
  double scale = 0.0, err = 0.0;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  for (size_t i = 0; i < want.size(); ++i) {
    const double e = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (std::isnan(e) || e > err) {
      err = std::isnan(e) ? INFINITY : e;
      if (worst) *worst = i;
    }
  }
  return err / std::max(scale, 1e-300);
}

}  // namespace lords::train::test
