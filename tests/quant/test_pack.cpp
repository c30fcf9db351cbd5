// Code packing: round trips for 2/3/4 bits over odd shapes, the byte layout against hand-packed bytes and
// against a bit-by-bit reference of the documented stream (docs/FORMAT.md "Code packing").
#include <gtest/gtest.h>

#include <random>

#include "lords/core/error.h"
#include "lords/quant/pack.h"

namespace lords::quant {
namespace {

// Bit i of the row stream is bit (i mod 8) of byte i / 8; code k occupies bits [k b, (k+1) b).
std::vector<uint8_t> pack_reference(const std::vector<uint8_t>& codes, int64_t N, int64_t K, int bits) {
  const int64_t rb = (K * bits + 7) / 8;
  std::vector<uint8_t> out(static_cast<size_t>(N * rb), 0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      for (int b = 0; b < bits; ++b) {
        const int64_t i = k * bits + b;
        if ((codes[static_cast<size_t>(n * K + k)] >> b) & 1)
          out[static_cast<size_t>(n * rb + i / 8)] |= static_cast<uint8_t>(1u << (i % 8));
      }
  return out;
}

TEST(Pack, RowBytes) {
  EXPECT_EQ(packed_row_bytes(4096, 4), 2048);
  EXPECT_EQ(packed_row_bytes(13, 4), 7);
  EXPECT_EQ(packed_row_bytes(13, 3), 5);  // 39 bits
  EXPECT_EQ(packed_row_bytes(13, 2), 4);
  EXPECT_EQ(packed_row_bytes(1, 3), 1);
}

TEST(Pack, RoundTripOddShapes) {
  std::mt19937 rng(3);
  for (int bits : {2, 3, 4}) {
    std::uniform_int_distribution<int> code(0, (1 << bits) - 1);
    for (int64_t N : {1, 5}) {
      for (int64_t K : {1, 3, 7, 13, 129}) {
        std::vector<uint8_t> codes(static_cast<size_t>(N * K));
        for (uint8_t& c : codes) c = static_cast<uint8_t>(code(rng));
        const std::vector<uint8_t> packed = pack_codes(codes.data(), N, K, bits);
        ASSERT_EQ(packed.size(), static_cast<size_t>(N * packed_row_bytes(K, bits)));
        EXPECT_EQ(packed, pack_reference(codes, N, K, bits)) << "bits " << bits << " N " << N << " K " << K;
        std::vector<uint8_t> back(codes.size(), 0xFF);
        unpack_codes(packed.data(), N, K, bits, back.data());
        EXPECT_EQ(back, codes) << "bits " << bits << " N " << N << " K " << K;
      }
    }
  }
}

TEST(Pack, HandCheckedBytes) {
  // 4 bits: low nibble first; odd K pads the high nibble with zeros.
  const uint8_t c4[3] = {0x1, 0xA, 0xF};
  EXPECT_EQ(pack_codes(c4, 1, 3, 4), (std::vector<uint8_t>{0xA1, 0x0F}));
  // 2 bits: codes 4j..4j+3 from the least significant bits: 3,0,1,2 -> 0b10'01'00'11 = 0x93; then 1 -> 0x01.
  const uint8_t c2[5] = {3, 0, 1, 2, 1};
  EXPECT_EQ(pack_codes(c2, 1, 5, 2), (std::vector<uint8_t>{0x93, 0x01}));
  // 3 bits: codes 5,3,6 -> bits 101 | 011 << 3 | 110 << 6 = 0b1'1001'1101 -> bytes 0x9D, 0x01.
  const uint8_t c3[3] = {5, 3, 6};
  EXPECT_EQ(pack_codes(c3, 1, 3, 3), (std::vector<uint8_t>{0x9D, 0x01}));
  // Rows are padded independently: two rows of one 3-bit code each.
  const uint8_t r3[2] = {7, 2};
  EXPECT_EQ(pack_codes(r3, 2, 1, 3), (std::vector<uint8_t>{0x07, 0x02}));
}

TEST(Pack, LargeRoundTrip) {
  std::mt19937 rng(11);
  const int64_t N = 7, K = 4099;
  for (int bits : {2, 3, 4}) {
    std::uniform_int_distribution<int> code(0, (1 << bits) - 1);
    std::vector<uint8_t> codes(static_cast<size_t>(N * K));
    for (uint8_t& c : codes) c = static_cast<uint8_t>(code(rng));
    const std::vector<uint8_t> packed = pack_codes(codes.data(), N, K, bits);
    EXPECT_EQ(packed, pack_reference(codes, N, K, bits));
    std::vector<uint8_t> back(codes.size());
    unpack_codes(packed.data(), N, K, bits, back.data());
    EXPECT_EQ(back, codes);
  }
}

TEST(Pack, RejectsBadBits) {
  const uint8_t c[1] = {0};
  EXPECT_THROW(pack_codes(c, 1, 1, 0), Error);
  EXPECT_THROW(pack_codes(c, 1, 1, 9), Error);
}

}  // namespace
}  // namespace lords::quant
