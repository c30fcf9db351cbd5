// Device building blocks of the fused qmatmul kernel (which also dequantizes): the shared level
// table, the fragment-layout code loads, and the
// reconstruction of one warp's W_hat A fragment for a k16 step (levels times the scale tile, the
// low-rank scale tile itself computed on the tensor cores as B_tile · A_tile).
#pragma once

#include "lords/cuda/qmm/mma.cuh"
#include "lords/cuda/qmm/qmm_params.h"

namespace lords::cuda::qmm {

// Level table: 16 words in 16 distinct banks, level c in the low 16 bits of word c. A warp's 32
// lookups of one instruction touch at most 16 distinct words, each in its own bank, so they never
// conflict (equal words are broadcast). Two lookups and one byte permute give a register pair.
constexpr int kLutWords = 16;

template <class T>
__device__ __forceinline__ void build_lut(uint32_t* lut, const float* levels, int tid, int nlevels) {
  if (tid < kLutWords) lut[tid] = as_u32(Act<T>::pack(tid < nlevels ? levels[tid] : 0.f, 0.f));
}

// Rows tok0 .. tok0+tokens-1 of X (M, K), columns [k0, k0 + cols) (cols a multiple of 8), to shared
// memory with a row stride of `stride` elements; zero beyond M and K. 16-byte cp.async where X rows are
// aligned (x_vec), element copies otherwise. Block-wide; the caller commits and waits.
template <class T>
__device__ __forceinline__ void load_x_tile(T* dst, int stride, const T* X, int64_t M, int64_t K, bool x_vec,
                                            int64_t tok0, int tokens, int64_t k0, int cols, int tid, int threads) {
  const int chunks = cols / 8;
  for (int i = tid; i < tokens * chunks; i += threads) {
    const int tok = i / chunks, c8 = (i % chunks) * 8;
    const int64_t gt = tok0 + tok, gk = k0 + c8;
    T* d = dst + tok * stride + c8;
    if (x_vec && gt < M && gk + 8 <= K) {
      cp_async16(d, X + gt * K + gk);
    } else {
#pragma unroll
      for (int j = 0; j < 8; ++j) d[j] = (gt < M && gk + j < K) ? X[gt * K + gk + j] : Act<T>::from_float(0.f);
    }
  }
}

// One 64-k group of one row tile, as thread `lane` holds it (fragment_layout.h).
struct GroupCodes {
  uint32_t w[4];
};

// From this lane's own address: lane_ptr = group + lane * lane_code_bytes<BITS>(), and for 3 bits the
// high word at lane_ptr + hi_off (hi_off = 256 - 4 * lane), so that a caller walking the stream
// advances one pointer.
template <int BITS>
constexpr int lane_code_bytes() { return BITS == 4 ? 16 : 8; }
template <int BITS>
__device__ __forceinline__ void load_group_at(GroupCodes& c, const uint8_t* lane_ptr, int hi_off) {
  if constexpr (BITS == 4) {
    const uint4 v = ld_stream(reinterpret_cast<const uint4*>(lane_ptr));
    c.w[0] = v.x, c.w[1] = v.y, c.w[2] = v.z, c.w[3] = v.w;
  } else {
    const uint2 v = ld_stream(reinterpret_cast<const uint2*>(lane_ptr));
    c.w[0] = v.x, c.w[1] = v.y, c.w[2] = 0, c.w[3] = 0;
    if constexpr (BITS == 3) c.w[2] = ld_stream(reinterpret_cast<const uint32_t*>(lane_ptr + hi_off));
  }
}
template <int BITS>
__device__ __forceinline__ void load_group(GroupCodes& c, const uint8_t* group, int lane) {
  load_group_at<BITS>(c, group + lane * lane_code_bytes<BITS>(), 256 - 4 * lane);
}

// Codes of register pair P (elements 2P, 2P+1) of step S.
template <int BITS, int S, int P>
__device__ __forceinline__ void code_pair(const GroupCodes& c, uint32_t& ca, uint32_t& cb) {
  if constexpr (BITS == 4) {
    ca = (c.w[S] >> (8 * P)) & 0xFu;
    cb = (c.w[S] >> (8 * P + 4)) & 0xFu;
  } else {
    const uint32_t lo = c.w[S / 2] >> (16 * (S % 2) + 4 * P);
    ca = lo & 3u;
    cb = (lo >> 2) & 3u;
    if constexpr (BITS == 3) {
      const uint32_t hi = c.w[2] >> (8 * S + 2 * P);
      ca |= (hi & 1u) << 2;
      cb |= (hi & 2u) << 1;
    }
  }
}

// The four level pairs of step S (fragment registers a0a1, a2a3, a4a5, a6a7).
template <int BITS, int S>
__device__ __forceinline__ void level_pairs(uint32_t (&lev)[4], const GroupCodes& c, const uint32_t* lut, int) {
#pragma unroll
  for (int P = 0; P < 4; ++P) {
    uint32_t ca, cb;
    if (P == 0) code_pair<BITS, S, 0>(c, ca, cb);
    else if (P == 1) code_pair<BITS, S, 1>(c, ca, cb);
    else if (P == 2) code_pair<BITS, S, 2>(c, ca, cb);
    else code_pair<BITS, S, 3>(c, ca, cb);
    lev[P] = __byte_perm(lut[ca], lut[cb], 0x5410);
  }
}

// B rows of one row tile as mma A fragments, one per 16 columns of the padded rank (<= 64).
template <class T, int RC>
__device__ __forceinline__ void load_b_frags(uint32_t (&bf)[RC][4], const T* B, int64_t row, int rp, int lane) {
  const int g = lane >> 2, t = lane & 3;
  const uint32_t* r0 = reinterpret_cast<const uint32_t*>(B + (row + g) * rp);
  const uint32_t* r8 = reinterpret_cast<const uint32_t*>(B + (row + g + 8) * rp);
#pragma unroll
  for (int c = 0; c < RC; ++c) {
    if (c * 16 < rp) {
      bf[c][0] = r0[(c * 16 + 2 * t) / 2];
      bf[c][1] = r8[(c * 16 + 2 * t) / 2];
      bf[c][2] = r0[(c * 16 + 8 + 2 * t) / 2];
      bf[c][3] = r8[(c * 16 + 8 + 2 * t) / 2];
    } else {
      bf[c][0] = bf[c][1] = bf[c][2] = bf[c][3] = 0;
    }
  }
}

// B fragments of RT row tiles (tile index row_tile0 + rt; those >= valid_tiles are zero: padding).
template <class T, int RT, int RC>
__device__ __forceinline__ void load_b_tiles(uint32_t (&bf)[RT][RC][4], const T* B, int64_t row_tile0,
                                             int valid_tiles, int rp, int lane) {
#pragma unroll
  for (int rt = 0; rt < RT; ++rt) {
    if (rt < valid_tiles) {
      load_b_frags<T, RC>(bf[rt], B, (row_tile0 + rt) * 16, rp, lane);
    } else {
#pragma unroll
      for (int c = 0; c < RC; ++c) bf[rt][c][0] = bf[rt][c][1] = bf[rt][c][2] = bf[rt][c][3] = 0;
    }
  }
}

// W_hat A fragment of one row tile for one k16 step: levels times the low-rank scale tile
// S (16 x 16) = B_tile (16 x rp) · A_tile (rp x 16), the latter read from shared memory as A^T
// rows (k, rp), row stride at_stride elements, starting at the step's first k.
template <class T, int RT, int RC>
__device__ __forceinline__ void lowrank_w_frags(uint32_t (&w)[RT][4], const uint32_t (&lev)[RT][4],
                                                const uint32_t (&bf)[RT][RC][4], const T* at_step,
                                                int at_stride, int rp, int lane) {
  using A = Act<T>;
  using T2 = typename A::T2;
  float s[RT][2][4];
#pragma unroll
  for (int rt = 0; rt < RT; ++rt)
#pragma unroll
    for (int i = 0; i < 4; ++i) s[rt][0][i] = s[rt][1][i] = 0.f;
  // ldmatrix x4: matrices (k 0-7, r 0-7) (k 0-7, r 8-15) (k 8-15, r 0-7) (k 8-15, r 8-15)
  const T* row_ptr = at_step + ((lane >> 4) * 8 + (lane & 7)) * at_stride + ((lane >> 3) & 1) * 8;
#pragma unroll
  for (int c = 0; c < RC; ++c) {
    if (c * 16 < rp) {
      uint32_t af[4];
      ldmatrix_x4(af, row_ptr + c * 16);
#pragma unroll
      for (int rt = 0; rt < RT; ++rt) {
        A::mma(s[rt][0], bf[rt][c], af[0], af[1]);
        A::mma(s[rt][1], bf[rt][c], af[2], af[3]);
      }
    }
  }
  // The m16n8 accumulators of the two k halves are exactly the A-fragment register order.
#pragma unroll
  for (int rt = 0; rt < RT; ++rt) {
    w[rt][0] = as_u32(__hmul2(from_u32<T2>(lev[rt][0]), A::pack(s[rt][0][0], s[rt][0][1])));
    w[rt][1] = as_u32(__hmul2(from_u32<T2>(lev[rt][1]), A::pack(s[rt][0][2], s[rt][0][3])));
    w[rt][2] = as_u32(__hmul2(from_u32<T2>(lev[rt][2]), A::pack(s[rt][1][0], s[rt][1][1])));
    w[rt][3] = as_u32(__hmul2(from_u32<T2>(lev[rt][3]), A::pack(s[rt][1][2], s[rt][1][3])));
  }
}

// W_hat A fragment for block scales from the two in hand: s0 of row g, s8 of row g + 8.
template <class T>
__device__ __forceinline__ void block_w_frag_pair(uint32_t (&w)[4], const uint32_t (&lev)[4], T s0, T s8) {
  using A = Act<T>;
  using T2 = typename A::T2;
  T2 p0, p8;
  p0.x = s0, p0.y = s0, p8.x = s8, p8.y = s8;
  w[0] = as_u32(__hmul2(from_u32<T2>(lev[0]), p0));
  w[1] = as_u32(__hmul2(from_u32<T2>(lev[1]), p8));
  w[2] = as_u32(__hmul2(from_u32<T2>(lev[2]), p0));
  w[3] = as_u32(__hmul2(from_u32<T2>(lev[3]), p8));
}

// The same reading the scales: rows g and g+8 each have one scale per step (G % 16 == 0).
template <class T>
__device__ __forceinline__ void block_w_frag(uint32_t (&w)[4], const uint32_t (&lev)[4], const T* scales,
                                             int64_t row, int64_t nblocks, int64_t blk, int lane) {
  const int g = lane >> 2;
  block_w_frag_pair<T>(w, lev, scales[(row + g) * nblocks + blk], scales[(row + g + 8) * nblocks + blk]);
}

}  // namespace lords::cuda::qmm
