// CPU qmatmul (OpenMP + AVX2/FMA): Y (M, N) = X (M, K) · W_hat^T, W_hat = level[Q] (.) S, never
// built whole. Y is overwritten. One producer per scale kind walks 8-wide vectors of W_hat, a few
// rows at a time:
//   walk_lowrank  S[n, k..k+16) = sum_j B[n,j] A[j, k..k+16): r vector FMAs over a packed panel of
//                 A, 4 rows x 2 vectors at once (8 independent FMA chains cover the FMA latency),
//   walk_block    one broadcast scale per group (any G; with G % 8 == 0 no vector splits),
// with the codes decoded in registers: 8 codes are `bits` bytes; broadcast + variable shift + mask
// gives 8 indices and _mm256_permutevar8x32_ps looks them up (two halves + blend for 16 levels).
// Two consumers:
//   decode   (small M) FMA each vector into per-row register accumulators (M = 1), or stage 128
//            columns in L1 and dot them with token pairs (M > 1); parallel over rows.
//   prefill  (larger M) store a (64 rows x 256) tile of W_hat in a per-thread buffer and
//            cblas_sgemm it into Y's columns; parallel over tiles.
// Summation is fp32 (vector lanes, then K blocks): results differ from ref in rounding only, and
// not at all between runs or thread counts.
#include "lords/ops/qmatmul.h"

#include <cblas.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "lords/core/error.h"
#include "lords/quant/blockwise.h"
#include "lords/quant/pack.h"

namespace lords::ops::cpu {
namespace {

// Largest M on the decode path, from measured crossovers against the sgemm path (4096 x 4096, one
// core): the low-rank scale costs r FMAs per weight either way, and decode shares it across tokens
// with no tile traffic (M = 8: 11.5 vs 11.6 ms); block decode pays more per extra token than
// OpenBLAS's microkernel (M = 4: 3.5 vs 3.2 ms, M = 2: 2.6 vs 2.6 ms).
constexpr int kDecodeMaxMLowRank = 8;
constexpr int kDecodeMaxMBlock = 3;
constexpr int kRows = 4;                         // rows of W per walk (see the file comment)
constexpr int64_t kScaleBlockBytes = 128 << 10;  // decode K block: packed A slice (r, block) in L2
constexpr int64_t kTileN = 64;                   // prefill tile rows
constexpr int64_t kTileK = 256;                  // prefill tile columns: 64 KB of fp32 stays in L2
static_assert(kTileK % 16 == 0, "K blocks are whole 16-column A panels");
constexpr int64_t kMinParallelWeights = 1 << 15;  // smaller: one thread beats waking a team

struct Lut {
  __m256 lo, hi;  // levels 0..7 and 8..15 (zero-padded)
};

// Everything a walk needs about the weight, computed once per call.
struct Problem {
  const QWeight* w;
  int64_t row_bytes;  // packed bytes per row of codes
  int64_t nb;         // blocks per row (Block)
  Lut lut;
};

Problem make_problem(const QWeight& w) {
  alignas(32) float t[16] = {};
  std::memcpy(t, w.levels, sizeof(float) << w.bits);
  const int64_t nb = w.kind == QScaleKind::Block ? quant::num_blocks(w.K, w.G) : 0;
  return {&w, quant::packed_row_bytes(w.K, w.bits), nb, {_mm256_load_ps(t), _mm256_load_ps(t + 8)}};
}

inline __m256i lane_mask(int valid) {  // lanes < valid all ones
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Levels of 8 codes held in the low 8*kBits bits of `packed` (LSB-first stream, docs/FORMAT.md):
// lane i shifts the broadcast word right by i*kBits and masks: no gather, no per-code scalar work.
template <int kBits>
inline __m256 lookup(uint32_t packed, const Lut& lut) {
  const __m256i shifts =
      _mm256_setr_epi32(0, kBits, 2 * kBits, 3 * kBits, 4 * kBits, 5 * kBits, 6 * kBits, 7 * kBits);
  const __m256i idx =
      _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(packed)), shifts),
                       _mm256_set1_epi32((1 << kBits) - 1));
  if constexpr (kBits == 4) {
    // permutevar8x32 uses the low 3 index bits; bit 3 (moved to the sign bit) picks the upper half.
    const __m256 lo = _mm256_permutevar8x32_ps(lut.lo, idx);
    const __m256 hi = _mm256_permutevar8x32_ps(lut.hi, idx);
    return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
  } else {
    return _mm256_permutevar8x32_ps(lut.lo, idx);
  }
}

// Codes k..k+8 of a row, k % 8 == 0: exactly kBits bytes, so 3-bit codes need no straddle logic.
template <int kBits>
inline __m256 levels8(const uint8_t* row, int64_t k, const Lut& lut) {
  uint32_t u = 0;
  std::memcpy(&u, row + k / 8 * kBits, kBits);
  return lookup<kBits>(u, lut);
}

// The last `valid` < 8 codes of a row: reads only the bytes the row has (lanes >= valid: level[0]).
template <int kBits>
inline __m256 levels_tail(const uint8_t* row, int64_t k, int valid, const Lut& lut) {
  uint32_t u = 0;
  std::memcpy(&u, row + k / 8 * kBits, static_cast<size_t>((valid * kBits + 7) / 8));
  return lookup<kBits>(u, lut);
}

// f(I) for I = 0..R-1 as std::integral_constant: every index into the per-row register arrays below
// is a compile-time constant, so GCC keeps them in registers (with runtime loop indices it kept the
// 8 scale accumulators in memory and stored them on every FMA, 2x slower).
template <int R, class F>
inline void for_rows(F&& f) {
  [&]<int... I>(std::integer_sequence<int, I...>) {
    (f(std::integral_constant<int, I>{}), ...);
  }
  (std::make_integer_sequence<int, R>{});
}

// Per-thread scratch (the packed A block, the prefill tile): grown on first use and kept, so a call
// never allocates once a thread has seen its largest shape.
float* scratch(size_t floats) {
  static thread_local std::vector<float> buf;
  if (buf.size() < floats) buf.resize(floats);
  return buf.data();
}

// A[:, k0..k1) repacked as 16-column panels, ap[(c r + j) 16 + l] = A[j, k0 + 16 c + l], zero past
// k1. In place A's rows are K floats apart; for K a multiple of 1024 (4096, 14336) all r rows map
// to the same L1 set and the walk thrashes L1 (r > 8 ways): a panel makes the r x 16 block one
// contiguous stream.
void pack_a(float* ap, const QWeight& w, int64_t k0, int64_t k1) {
  for (int64_t c = 0; k0 + 16 * c < k1; ++c) {
    const int64_t k = k0 + 16 * c, n = std::min<int64_t>(16, k1 - k);
    for (int64_t j = 0; j < w.r; ++j) {
      float* dst = ap + (c * w.r + j) * 16;
      std::memcpy(dst, w.A + j * w.K + k, static_cast<size_t>(n) * sizeof(float));
      std::fill(dst + n, dst + 16, 0.0f);
    }
  }
}

// Why rebuild S rather than use y_n = sum_j B[n,j] sum_k level[Q[n,k]] (A[j,k] x_k) with XA = A x
// precomputed per token: both cost r FMAs per weight at M = 1, but the XA form needs R x r
// accumulators (or an L1 buffer of decoded levels re-read r/2 times: 6 loads per 8 FMAs) and M r
// FMAs per weight for M tokens, against r + M here. Measured on one core, 256 x 1024, 4-bit, M = 1,
// in cycles per weight at r = 16 / 32: XA prototype 1.54 / 3.32, this walk 1.15 / 1.98 (~90% of
// the 2 FMA/cycle bound).
//
// Both walks produce W_hat[n0 + i, k .. k+8) for i < R and every 8-aligned k in [k0, k1), with
// k0 % 16 == 0 and k1 either K or a multiple of 16, and hand it to sink(i, k, w, valid); valid < 8
// only for a row's last vector, whose lanes >= valid are zero. walk_lowrank reads A from the
// panels of pack_a(ap, w, k0, k1).
template <int kBits, int R, class Sink>
inline void walk_lowrank(
    const Problem& p, const float* ap, int64_t n0, int64_t k0, int64_t k1, Sink&& sink) {
  const QWeight& w = *p.w;
  const int64_t r = w.r;
  const float* B = w.B + n0 * r;  // (R, r)
  const uint8_t* codes = w.codes + n0 * p.row_bytes;
  for (int64_t k = k0; k < k1; k += 16, ap += 16 * r) {
    // S[n0+i, k..k+16) = sum_j B[n0+i, j] A[j, k..k+16): per j 2 loads of A, R broadcasts of B.
    __m256 s0[R], s1[R];
    for_rows<R>([&](auto i) { s0[i] = s1[i] = _mm256_setzero_ps(); });
    for (int64_t j = 0; j < r; ++j) {
      const __m256 a0 = _mm256_loadu_ps(ap + 16 * j), a1 = _mm256_loadu_ps(ap + 16 * j + 8);
      for_rows<R>([&](auto i) {
        const __m256 b = _mm256_broadcast_ss(B + i * r + j);
        s0[i] = _mm256_fmadd_ps(b, a0, s0[i]);
        s1[i] = _mm256_fmadd_ps(b, a1, s1[i]);
      });
    }
    if (k + 16 <= k1) {
      for_rows<R>([&](auto i) {
        const uint8_t* row = codes + i * p.row_bytes;
        sink(i, k, _mm256_mul_ps(levels8<kBits>(row, k, p.lut), s0[i]), 8);
        sink(i, k + 8, _mm256_mul_ps(levels8<kBits>(row, k + 8, p.lut), s1[i]), 8);
      });
    } else {  // the row's end: S is zero past K (zero panel padding), codes are read only up to K
      const int v0 = static_cast<int>(std::min<int64_t>(8, k1 - k)),
                v1 = static_cast<int>(k1 - k) - v0;
      for_rows<R>([&](auto i) {
        const uint8_t* row = codes + i * p.row_bytes;
        const __m256 l0 =
            v0 == 8 ? levels8<kBits>(row, k, p.lut) : levels_tail<kBits>(row, k, v0, p.lut);
        sink(i, k, _mm256_mul_ps(l0, s0[i]), v0);
        if (v1 > 0)
          sink(i, k + 8, _mm256_mul_ps(levels_tail<kBits>(row, k + 8, v1, p.lut), s1[i]), v1);
      });
    }
  }
}

template <int kBits, int R, class Sink>
inline void walk_block(const Problem& p, int64_t n0, int64_t k0, int64_t k1, Sink&& sink) {
  const QWeight& w = *p.w;
  const int64_t G = w.G;
  const float* sc = w.scales + n0 * p.nb;  // (R, nb)
  const uint8_t* codes = w.codes + n0 * p.row_bytes;
  if (G % 8 == 0) {  // vectors never straddle groups: one broadcast per row and group
    for (int64_t g = k0 / G; g * G < k1; ++g) {
      const int64_t ke = std::min(k1, (g + 1) * G);
      __m256 s[R];
      for_rows<R>([&](auto i) { s[i] = _mm256_broadcast_ss(sc + i * p.nb + g); });
      int64_t k = std::max(k0, g * G);
      for (; k + 8 <= ke; k += 8)
        for_rows<R>([&](auto i) {
          sink(i, k, _mm256_mul_ps(levels8<kBits>(codes + i * p.row_bytes, k, p.lut), s[i]), 8);
        });
      if (k < ke) {  // only at k == K - K % 8
        const int valid = static_cast<int>(ke - k);
        const __m256 mask = _mm256_castsi256_ps(lane_mask(valid));
        for_rows<R>([&](auto i) {
          const __m256 lv = levels_tail<kBits>(codes + i * p.row_bytes, k, valid, p.lut);
          sink(i, k, _mm256_and_ps(_mm256_mul_ps(lv, s[i]), mask), valid);
        });
      }
    }
    return;
  }
  // Any other G (not a layout we produce, but legal): the scale vector is assembled lane by lane.
  for (int64_t k = k0; k < k1; k += 8) {
    const int valid = static_cast<int>(std::min<int64_t>(8, k1 - k));
    for_rows<R>([&](auto i) {
      alignas(32) float sv[8] = {};  // zero past K, which zeroes those lanes of W_hat
      for (int l = 0; l < valid; ++l) sv[l] = sc[i * p.nb + (k + l) / G];
      const uint8_t* row = codes + i * p.row_bytes;
      const __m256 lv =
          valid == 8 ? levels8<kBits>(row, k, p.lut) : levels_tail<kBits>(row, k, valid, p.lut);
      sink(i, k, _mm256_mul_ps(lv, _mm256_load_ps(sv)), valid);
    });
  }
}

template <int kBits, int R, class Sink>
inline void walk(
    const Problem& p, const float* ap, int64_t n0, int64_t k0, int64_t k1, Sink&& sink) {
  if (p.w->kind == QScaleKind::LowRank) {
    walk_lowrank<kBits, R>(p, ap, n0, k0, k1, sink);
  } else {
    walk_block<kBits, R>(p, n0, k0, k1, sink);
  }
}

// ---- decode: Y[m, n0..n0+R) (+)= W_hat[n0..n0+R, k0..k1) · X[m, k0..k1) for the kM tokens ----
constexpr int64_t kDecodeSub = 128;  // kM > 1: columns of W_hat staged in L1 per step

// acc[i][m0 + t] += wt[i, 0..n) · X[m0 + t, k..k+n) for t < T: T = 2 tokens x R = 4 rows are 8
// independent FMA chains; the accumulators stay in registers within a call, in memory between.
template <int R, int T, int kM>
inline void dot_tokens(__m256 (&acc)[R][kM],
                       const float (&wt)[R][kDecodeSub],
                       const float* X,
                       int64_t K,
                       int m0,
                       int64_t k,
                       int64_t n) {
  __m256 a[R][T];
  for_rows<R>([&](auto i) {
    for (int t = 0; t < T; ++t) a[i][t] = acc[i][m0 + t];
  });
  // Per vector: R loads of W_hat held in registers, T loads of X, R x T FMAs.
  auto step = [&](int64_t at, auto load_x) {
    __m256 wv[R];
    for_rows<R>([&](auto i) { wv[i] = _mm256_load_ps(wt[i] + at); });
    for (int t = 0; t < T; ++t) {
      const __m256 x = load_x(X + (m0 + t) * K + k + at);
      for_rows<R>([&](auto i) { a[i][t] = _mm256_fmadd_ps(wv[i], x, a[i][t]); });
    }
  };
  int64_t v = 0;
  for (; v + 8 <= n; v += 8) step(v, [](const float* x) { return _mm256_loadu_ps(x); });
  if (v < n) {  // masked: X has no padding past K (wt is zero there)
    const __m256i mask = lane_mask(static_cast<int>(n - v));
    step(v, [mask](const float* x) { return _mm256_maskload_ps(x, mask); });
  }
  for_rows<R>([&](auto i) {
    for (int t = 0; t < T; ++t) acc[i][m0 + t] = a[i][t];
  });
}

template <int kBits, int R, int kM>
void decode_rows(float* Y,
                 const float* X,
                 const Problem& p,
                 const float* ap,
                 int64_t n0,
                 int64_t k0,
                 int64_t k1) {
  const int64_t N = p.w->N, K = p.w->K;
  __m256 acc[R][kM];
  for_rows<R>([&](auto i) {
    for (int m = 0; m < kM; ++m) acc[i][m] = _mm256_setzero_ps();
  });
  if constexpr (kM == 1) {
    // One token: FMA each W_hat vector straight into R register accumulators.
    walk<kBits, R>(p, ap, n0, k0, k1, [&](auto i, int64_t k, __m256 wv, int valid) {
      const float* x = X + k;
      acc[i][0] = _mm256_fmadd_ps(
          wv, valid == 8 ? _mm256_loadu_ps(x) : _mm256_maskload_ps(x, lane_mask(valid)), acc[i][0]);
    });
  } else {
    // Several tokens: R x kM accumulators do not fit 16 registers, and spilling them on every FMA
    // made M = 8 slower than the sgemm path. Instead stage (R, kDecodeSub) of W_hat in L1 and dot
    // it with token pairs.
    alignas(32) float wt[R][kDecodeSub];
    for (int64_t ks = k0; ks < k1; ks += kDecodeSub) {
      const int64_t ke = std::min(k1, ks + kDecodeSub);
      walk<kBits, R>(
          p,
          ap ? ap + (ks - k0) * p.w->r : nullptr,
          n0,
          ks,
          ke,
          [&](auto i, int64_t k, __m256 wv, int) { _mm256_store_ps(wt[i] + (k - ks), wv); });
      int m = 0;
      for (; m + 2 <= kM; m += 2) dot_tokens<R, 2>(acc, wt, X, K, m, ks, ke - ks);
      if (m < kM) dot_tokens<R, 1>(acc, wt, X, K, m, ks, ke - ks);
    }
  }
  for_rows<R>([&](auto i) {
    for (int m = 0; m < kM; ++m) {
      float& y = Y[m * N + n0 + i];
      y = (k0 == 0 ? 0.0f : y) + hsum(acc[i][m]);
    }
  });
}

// Decode K block: a thread packs A's (r, block) slice once and reuses it for all its rows, so the
// slice should stay in L2; block scales need no blocking.
int64_t decode_k_block(const QWeight& w) {
  if (w.kind == QScaleKind::Block) return w.K;
  const int64_t cols = kScaleBlockBytes / (w.r * static_cast<int64_t>(sizeof(float)));
  return std::max<int64_t>(16, cols / 16 * 16);  // whole 16-column panels
}

template <int kBits, int kM>
void decode(float* Y, const float* X, const Problem& p) {
  const QWeight& w = *p.w;
  const int64_t N = w.N, K = w.K;
  const int64_t kb = decode_k_block(w);
  // One level of parallelism, over chunks of rows handed out dynamically: a thread that is
  // descheduled (a busy machine) does not hold up half of the rows behind the closing barrier. Each
  // chunk runs all K blocks in order over its own rows, so every row's arithmetic, and the result,
  // is the same whichever thread computes it. Chunks of 16..256 rows, ~4 per thread: re-packing A
  // per chunk costs 1/rows of the FMAs.
  const int64_t per_thread = N / (4 * static_cast<int64_t>(omp_get_max_threads()));
  const int64_t chunk_rows = std::clamp<int64_t>((per_thread + kRows - 1) / kRows * kRows, 16, 256);
  const int64_t chunks = (N + chunk_rows - 1) / chunk_rows;
#pragma omp parallel for schedule(dynamic, 1) if (chunks > 1 && N * K >= kMinParallelWeights)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t n_begin = c * chunk_rows, n_end = std::min(N, n_begin + chunk_rows);
    float* ap = w.kind == QScaleKind::LowRank ? scratch(static_cast<size_t>(w.r * kb)) : nullptr;
    for (int64_t k0 = 0; k0 < K; k0 += kb) {
      const int64_t k1 = std::min(K, k0 + kb);
      if (ap) pack_a(ap, w, k0, k1);  // reused by every row of the chunk
      int64_t n0 = n_begin;
      for (; n0 + kRows <= n_end; n0 += kRows)
        decode_rows<kBits, kRows, kM>(Y, X, p, ap, n0, k0, k1);
      for (; n0 < n_end; ++n0) decode_rows<kBits, 1, kM>(Y, X, p, ap, n0, k0, k1);
    }
  }
}

template <int kBits>
void decode_m(float* Y, const float* X, int64_t M, const Problem& p) {
  using Fn = void (*)(float*, const float*, const Problem&);
  static constexpr Fn kByM[] = {decode<kBits, 1>,
                                decode<kBits, 2>,
                                decode<kBits, 3>,
                                decode<kBits, 4>,
                                decode<kBits, 5>,
                                decode<kBits, 6>,
                                decode<kBits, 7>,
                                decode<kBits, 8>};
  LORDS_ASSERT(M >= 1 && M <= 8);
  kByM[M - 1](Y, X, p);
}
static_assert(kDecodeMaxMLowRank <= 8 && kDecodeMaxMBlock <= 8, "decode_m instantiates kM = 1..8");

// ---- prefill: (kTileN, kTileK) tiles of W_hat; Y[:, tile rows] (+)= X[:, K block] · tile^T ----
template <int kBits>
void build_tile(float* tile,
                const Problem& p,
                const float* ap,
                int64_t n0,
                int64_t rows,
                int64_t k0,
                int64_t k1) {
  // Every store is a full vector: a row's last may reach 7 floats past k1 - k0, inside kTileK.
  auto store_at = [&](int64_t row0) {
    return [tile, row0, k0](auto i, int64_t k, __m256 wv, int) {
      _mm256_storeu_ps(tile + (row0 + i) * kTileK + (k - k0), wv);
    };
  };
  int64_t i0 = 0;
  for (; i0 + kRows <= rows; i0 += kRows) walk<kBits, kRows>(p, ap, n0 + i0, k0, k1, store_at(i0));
  for (; i0 < rows; ++i0) walk<kBits, 1>(p, ap, n0 + i0, k0, k1, store_at(i0));
}

template <int kBits>
void prefill(float* Y, const float* X, int64_t M, const Problem& p) {
  const QWeight& w = *p.w;
  const int64_t N = w.N, K = w.K;
  const int64_t tiles = (N + kTileN - 1) / kTileN;
  const bool lowrank = w.kind == QScaleKind::LowRank;
  // One level of parallelism: OpenMP over row tiles (dynamic, as in decode), each thread calling a
  // single-threaded sgemm on its own tile. Debian's pthread OpenBLAS does not see the OpenMP team,
  // so a multi-threaded sgemm inside the region would oversubscribe the cores: its thread count is
  // 1 for the duration of the call, then restored (a process-wide setting: concurrent BLAS callers
  // see it too).
  const int blas_threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1) if (tiles > 1 && N * K >= kMinParallelWeights)
  for (int64_t ti = 0; ti < tiles; ++ti) {
    // The tile (kTileN, kTileK), then the A panels of one K block.
    float* tile = scratch(static_cast<size_t>(kTileN * kTileK + (lowrank ? w.r * kTileK : 0)));
    float* ap = lowrank ? tile + kTileN * kTileK : nullptr;
    // Tile-outer: the tile's (M, kTileN) block of Y stays in cache across its K blocks; re-packing
    // A per (tile, K block) costs r / kTileN copies per weight against r FMAs.
    const int64_t n0 = ti * kTileN, rows = std::min(kTileN, N - n0);
    for (int64_t k0 = 0; k0 < K; k0 += kTileK) {
      const int64_t k1 = std::min(K, k0 + kTileK);
      if (ap) pack_a(ap, w, k0, k1);
      build_tile<kBits>(tile, p, ap, n0, rows, k0, k1);
      cblas_sgemm(CblasRowMajor,
                  CblasNoTrans,
                  CblasTrans,
                  static_cast<int>(M),
                  static_cast<int>(rows),
                  static_cast<int>(k1 - k0),
                  1.0f,
                  X + k0,
                  static_cast<int>(K),
                  tile,
                  static_cast<int>(kTileK),
                  k0 == 0 ? 0.0f : 1.0f,
                  Y + n0,
                  static_cast<int>(N));
    }
  }
  openblas_set_num_threads(blas_threads);
}

template <int kBits>
void run(float* Y, const float* X, int64_t M, const Problem& p) {
  if (M <= (p.w->kind == QScaleKind::LowRank ? kDecodeMaxMLowRank : kDecodeMaxMBlock)) {
    decode_m<kBits>(Y, X, M, p);
  } else {
    prefill<kBits>(Y, X, M, p);
  }
}

}  // namespace

void qmatmul(float* Y, const float* X, int64_t M, const QWeight& w) {
  LORDS_ASSERT(M >= 1 && w.N >= 1 && w.K >= 1 && w.codes && w.levels && w.bits >= 2 && w.bits <= 4);
  LORDS_ASSERT(w.kind == QScaleKind::LowRank ? (w.r >= 1 && w.B && w.A)
                                             : (w.G >= 1 && w.scales != nullptr));
  const Problem p = make_problem(w);
  if (w.bits == 2) {
    run<2>(Y, X, M, p);
  } else if (w.bits == 3) {
    run<3>(Y, X, M, p);
  } else {
    run<4>(Y, X, M, p);
  }
}

}  // namespace lords::ops::cpu
