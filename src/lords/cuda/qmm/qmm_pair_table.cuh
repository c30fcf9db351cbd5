// The code-pair level table of the qmatmul kernels that read 4-bit codes a byte at a time (decode,
// single-token and Hopper prefill): one shared-memory lookup turns one byte of a fragment word, two
// codes, into the fragment register (level[a], level[b]), conflict-free whatever the codes.
#pragma once

#include "lords/cuda/qmm/qmm_device.cuh"

namespace lords::cuda::qmm {

// Pair table: entry e = pack(level[ca(e)], level[cb(e)]). Lane l reads entry e at byte e * STRIDE + l * 4:
// every lane its own bank (no conflicts whatever the codes). With STRIDE = 256 the byte offset of a
// 4-bit lookup is one byte permute of the fragment word and the lane's offset (pair_offset), so a
// lookup is two instructions, but bytes 128..255 of each entry are unused; STRIDE = 128 halves the
// table (32 KB for 4 bits) for one more instruction (a shift), where shared memory is short.
template <int BITS, int STRIDE = 256>
struct PairTable {
  static_assert(STRIDE == 256 || STRIDE == 128);
  static constexpr int kEntries = 1 << (2 * BITS);
  static constexpr int kWords = kEntries * STRIDE / 4;
};

// The two codes of pair-table entry e (inverse of pair_index).
template <int BITS>
__device__ __forceinline__ void pair_codes(int e, int& ca, int& cb) {
  if constexpr (BITS == 4) {
    ca = e & 15, cb = e >> 4;
  } else if constexpr (BITS == 2) {
    ca = e & 3, cb = e >> 2;
  } else {  // low 2 bits of both in the nibble, their high bits above it
    ca = (e & 3) | (((e >> 4) & 1) << 2);
    cb = ((e >> 2) & 3) | (((e >> 5) & 1) << 2);
  }
}

// Builds the table (block-wide; a barrier must follow before lookups). Thread i writes 16-byte chunk
// i % 8 of entry i / 8, so a warp stores whole 128-byte runs of lane copies and no two of its stores
// share a bank wavefront. (One thread per entry, each writing its own 8 chunks, put every lane of a
// warp store 128 or 256 bytes apart: Nsight Compute counted 24-way bank conflicts on these stores.)
template <class T, int BITS, int STRIDE = 256>
__device__ __forceinline__ void build_pair_table(uint32_t* lut, const float* levels, int tid, int threads) {
  constexpr int kChunks = PairTable<BITS, STRIDE>::kEntries * 8;  // 32 lanes x 4 bytes per entry
  for (int i = tid; i < kChunks; i += threads) {
    const int e = i >> 3, q = i & 7;
    int ca, cb;
    pair_codes<BITS>(e, ca, cb);
    const uint32_t v = as_u32(Act<T>::pack(levels[ca], levels[cb]));
    reinterpret_cast<uint4*>(lut)[e * (STRIDE / 16) + q] = make_uint4(v, v, v, v);
  }
}

// Table entry of register pair P of step S (fragment_layout.h: codes 2P, 2P+1).
template <int BITS, int S, int P>
__device__ __forceinline__ uint32_t pair_index(const GroupCodes& c) {
  if constexpr (BITS == 4) {
    return __byte_perm(c.w[S], 0, 0x4440 + P);  // byte P, zero-extended
  } else {
    const uint32_t nib = (c.w[S / 2] >> (16 * (S % 2) + 4 * P)) & 0xFu;
    if constexpr (BITS == 2) return nib;
    else return nib | (((c.w[2] >> (8 * S + 2 * P)) & 3u) << 4);
  }
}

// Byte offset in the pair table of register pair P of step S for the lane whose offset is lane_off:
// lane * 4 for STRIDE = 256, lane * 8 for STRIDE = 128 (both < 256, one byte).
template <int BITS, int S, int P, int STRIDE = 256>
__device__ __forceinline__ uint32_t pair_offset(const GroupCodes& c, uint32_t lane_off) {
  if constexpr (STRIDE == 256) {
    if constexpr (BITS == 4) return __byte_perm(c.w[S], lane_off, 0x5504 + (P << 4));  // (byte P << 8) | lane4
    else return (pair_index<BITS, S, P>(c) << 8) | lane_off;
  } else {
    if constexpr (BITS == 4) return __byte_perm(c.w[S], lane_off, 0x5504 + (P << 4)) >> 1;  // (byte P << 7) | lane4
    else return (pair_index<BITS, S, P>(c) << 7) | (lane_off >> 1);
  }
}

}  // namespace lords::cuda::qmm
