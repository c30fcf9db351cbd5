// The GPU kernels' code layout: the checkpoint's row bitstream permuted so that one coalesced warp
// load hands every thread exactly the codes of its mma.m16n8k16 A fragment.
//
// Rows are taken 16 at a time (a row tile; N padded to Np = 16·ceil(N/16)) and k 64 at a time (a
// group; K padded to Kp = 64·ceil(K/64), padding codes 0). A group of a row tile is 4 k16 steps.
// In step s thread `lane` (g = lane/4, t = lane%4) holds the 8 codes of its A fragment, in the
// fragment's register order:
//   e = 0..7  ->  (row g, k 2t) (g, 2t+1) (g+8, 2t) (g+8, 2t+1) (g, 2t+8) (g, 2t+9) (g+8, 2t+8) (g+8, 2t+9)
// so codes (e = 2p, 2p+1) form the half2 register p. Each group occupies bits*128 bytes:
//   4 bits: 32 lanes x 16 B; lane word component s (32 bits) holds step s, code e at bit 4e.
//   2 bits: 32 lanes x 8 B;  16-bit half (s%2) of component s/2 holds step s, code e at bit 2e.
//   3 bits: the low 2 bits as the 2-bit layout (256 B), then 32 lanes x 4 B of high bits:
//           byte s holds step s, bit e = bit 2 of code e.
// Groups are ordered row tile major: offset(rt, grp) = (rt * Kp/64 + grp) * bits * 128.
#pragma once

#include <cstdint>
#include <vector>

namespace lords::cuda {

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

constexpr int64_t kRowTile = 16;
constexpr int64_t kCodeGroup = 64;

// codes: (N, K) unpacked code values < 2^bits. Returns Np*Kp*bits/8 bytes in the layout above.
std::vector<uint8_t> pack_fragment_codes(const uint8_t* codes, int64_t N, int64_t K, int bits);
// Inverse of pack_fragment_codes: writes (N, K) codes (padding dropped).
void unpack_fragment_codes(const uint8_t* packed, int64_t N, int64_t K, int bits, uint8_t* codes);

}  // namespace lords::cuda
