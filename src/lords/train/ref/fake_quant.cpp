// Reference QAT fake quantization (the spec, see fake_quant.h): scalar loops in T, sums in fp64.
// The backward is the LoRDS linear backward with the cached codes plus the straight-through dW, so
// the two share one definition of dX, dB and dA. Also holds fake_quant_check.
#include "lords/train/fake_quant.h"

#include <cmath>
#include <vector>

#include "lords/core/error.h"
#include "lords/quant/codebook.h"
#include "lords/quant/nearest_kernel.h"
#include "lords/train/qlinear_grad.h"

namespace lords::train {

void fake_quant_check(const FakeQuantWeight<float>& w, int64_t M, const FakeQuantOptions& opt) {
  LORDS_CHECK(M >= 1, ErrorKind::BadShape, "[fake_quant] M (tokens) must be >= 1, got {}", M);
  LORDS_CHECK(w.N >= 1 && w.K >= 1 && w.r >= 1,
              ErrorKind::BadShape,
              "[fake_quant] weight [{}, {}] rank {}, expected all >= 1",
              w.N,
              w.K,
              w.r);
  LORDS_CHECK(
      w.W && w.B && w.A && w.levels, ErrorKind::BadShape, "[fake_quant] W, B, A or levels missing");
  LORDS_CHECK(w.bits >= 2 && w.bits <= 4,
              ErrorKind::BadShape,
              "[fake_quant] bits {}, expected 2, 3 or 4",
              w.bits);
  // Throws on non-finite or unordered levels: the nearest-code search assumes ascending midpoints.
  quant::codebook_from_levels(
      quant::CodebookKind::NF, w.bits, {w.levels, w.levels + (1 << w.bits)});
  qlinear_tiles_check(opt.tiles);
}

namespace ref {
namespace {

// Number of midpoints strictly below x (Codebook::nearest in T; the midpoint (l[i] + l[i+1]) / 2 is
// the same float as Codebook's 0.5f * (..)); tiny scales and NaN quotients take the level nearest
// 0.
template <class T>
uint8_t nearest_code(T w, T s, const T* levels, int L) {
  T x = w / s;
  if (std::fabs(s) < static_cast<T>(quant::detail::kTinyScale) || std::isnan(x)) x = 0;
  int c = 0;
  for (int i = 0; i + 1 < L; ++i) c += x > (levels[i] + levels[i + 1]) / 2 ? 1 : 0;
  return static_cast<uint8_t>(c);
}

template <class T>
UnpackedWeight<T> unpacked(const FakeQuantWeight<T>& w, const uint8_t* codes) {
  UnpackedWeight<T> u;
  u.kind = ops::QScaleKind::LowRank;
  u.N = w.N;
  u.K = w.K;
  u.bits = w.bits;
  u.codes = codes;
  u.levels = w.levels;
  u.r = w.r;
  u.B = w.B;
  u.A = w.A;
  return u;
}

}  // namespace

template <class T>
void fake_quant_weight(T* W_hat, uint8_t* codes, const FakeQuantWeight<T>& w) {
  LORDS_ASSERT(w.N >= 1 && w.K >= 1 && w.r >= 1 && w.W && w.B && w.A && w.levels);
  const int L = 1 << w.bits;
  const UnpackedWeight<T> u = unpacked(w, codes);
  for (int64_t n = 0; n < w.N; ++n)
    for (int64_t k = 0; k < w.K; ++k) {
      const T s = scale_at(u, n, k);
      const uint8_t q = nearest_code(w.W[n * w.K + k], s, w.levels, L);
      codes[n * w.K + k] = q;
      W_hat[n * w.K + k] = w.levels[q] * s;
    }
}

template <class T>
void fake_quant_linear_fwd(
    T* Y, uint8_t* codes, const T* X, int64_t M, const FakeQuantWeight<T>& w) {
  std::vector<T> W_hat(static_cast<size_t>(w.N * w.K));  // the spec may materialize it
  fake_quant_weight(W_hat.data(), codes, w);
  qlinear_fwd(Y, X, M, unpacked(w, codes));
}

template <class T>
void fake_quant_linear_bwd(const FakeQuantGrads<T>& g,
                           const T* dY,
                           const T* X,
                           const uint8_t* codes,
                           int64_t M,
                           const FakeQuantWeight<T>& w,
                           const FakeQuantOptions& opt) {
  LORDS_ASSERT(g.dX && g.dW && g.dB && g.dA);
  const int64_t N = w.N, K = w.K;
  const UnpackedWeight<T> u = unpacked(w, codes);
  // dX, dB, dA: exactly the LoRDS linear backward for the codes the forward chose.
  lords_linear_bwd<T>({g.dX, g.dB, g.dA}, dY, X, M, u);
  const T lo = w.levels[0], hi = w.levels[(1 << w.bits) - 1];
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      if (opt.ste == SteRange::ZeroOutside) {
        const T s = scale_at(u, n, k), x = w.W[n * K + k] / s;
        // Written so that a NaN quotient fails too.
        const bool inside =
            std::fabs(s) >= static_cast<T>(quant::detail::kTinyScale) && x >= lo && x <= hi;
        if (!inside) continue;
      }
      double gw = 0.0;  // dW_hat[n,k]
      for (int64_t m = 0; m < M; ++m)
        gw += static_cast<double>(dY[m * N + n]) * static_cast<double>(X[m * K + k]);
      g.dW[n * K + k] += static_cast<T>(gw);
    }
}

template void fake_quant_weight<float>(float*, uint8_t*, const FakeQuantWeight<float>&);
template void fake_quant_weight<double>(double*, uint8_t*, const FakeQuantWeight<double>&);
template void fake_quant_linear_fwd<float>(
    float*, uint8_t*, const float*, int64_t, const FakeQuantWeight<float>&);
template void fake_quant_linear_fwd<double>(
    double*, uint8_t*, const double*, int64_t, const FakeQuantWeight<double>&);
template void fake_quant_linear_bwd<float>(const FakeQuantGrads<float>&,
                                           const float*,
                                           const float*,
                                           const uint8_t*,
                                           int64_t,
                                           const FakeQuantWeight<float>&,
                                           const FakeQuantOptions&);
template void fake_quant_linear_bwd<double>(const FakeQuantGrads<double>&,
                                            const double*,
                                            const double*,
                                            const uint8_t*,
                                            int64_t,
                                            const FakeQuantWeight<double>&,
                                            const FakeQuantOptions&);

}  // namespace ref
}  // namespace lords::train
