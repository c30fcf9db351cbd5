#include "lords/cuda/qmm/fragment_layout.h"

#include "lords/core/error.h"

namespace lords::cuda {
namespace {

// Position of fragment element e of thread `lane` inside a 16x16 step tile.
inline void element_pos(int lane, int e, int& row, int& col) {
  const int g = lane / 4, t = lane % 4;
  row = g + ((e >> 1) & 1) * 8;
  col = 2 * t + (e & 1) + (e >> 2) * 8;
}

// Visits every (row tile, group, step, lane, element) once with its code location and its bit
// address inside the packed buffer: fn(n, k, byte_offset, bit, width) for each stored field.
template <class Fn>
void for_each_field(int64_t N, int64_t K, int bits, Fn&& fn) {
  const int64_t Np = round_up(N, kRowTile), Kp = round_up(K, kCodeGroup);
  const int64_t groups = Kp / kCodeGroup, group_bytes = bits * 128;
  for (int64_t rt = 0; rt < Np / kRowTile; ++rt)
    for (int64_t grp = 0; grp < groups; ++grp) {
      const int64_t base = (rt * groups + grp) * group_bytes;
      for (int s = 0; s < 4; ++s)
        for (int lane = 0; lane < 32; ++lane)
          for (int e = 0; e < 8; ++e) {
            int row, col;
            element_pos(lane, e, row, col);
            const int64_t n = rt * kRowTile + row, k = grp * kCodeGroup + s * 16 + col;
            if (bits == 4) {
              fn(n, k, base + lane * 16 + s * 4, 4 * e, 0, 4);
            } else {
              // low two bits: 16-bit half s%2 of 32-bit component s/2 of an 8-byte lane word
              fn(n, k, base + lane * 8 + (s / 2) * 4, (s % 2) * 16 + 2 * e, 0, 2);
              if (bits == 3) fn(n, k, base + 256 + lane * 4, 8 * s + e, 2, 1);
            }
          }
    }
}

}  // namespace

std::vector<uint8_t> pack_fragment_codes(const uint8_t* codes, int64_t N, int64_t K, int bits) {
  LORDS_CHECK(bits >= 2 && bits <= 4, ErrorKind::BadShape, "[gpu layout] bits {}, expected 2, 3 or 4", bits);
  const int64_t Np = round_up(N, kRowTile), Kp = round_up(K, kCodeGroup);
  std::vector<uint8_t> out(static_cast<size_t>(Np * Kp * bits / 8), 0);
  // fields are stored in little-endian 32-bit words: bit b of a word at byte offset o is bit b%8 of
  // byte o + b/8
  for_each_field(N, K, bits, [&](int64_t n, int64_t k, int64_t off, int bit, int src_shift, int width) {
    if (n >= N || k >= K) return;
    const unsigned v = (codes[n * K + k] >> src_shift) & ((1u << width) - 1);
    for (int b = 0; b < width; ++b)
      if (v >> b & 1u) out[off + (bit + b) / 8] |= static_cast<uint8_t>(1u << ((bit + b) % 8));
  });
  return out;
}

void unpack_fragment_codes(const uint8_t* packed, int64_t N, int64_t K, int bits, uint8_t* codes) {
  for (int64_t i = 0; i < N * K; ++i) codes[i] = 0;
  for_each_field(N, K, bits, [&](int64_t n, int64_t k, int64_t off, int bit, int dst_shift, int width) {
    if (n >= N || k >= K) return;
    unsigned v = 0;
    for (int b = 0; b < width; ++b) v |= ((packed[off + (bit + b) / 8] >> ((bit + b) % 8)) & 1u) << b;
    codes[n * K + k] = static_cast<uint8_t>(codes[n * K + k] | (v << dst_shift));
  });
}

}  // namespace lords::cuda
