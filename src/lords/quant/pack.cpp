// Bit packing of codes: each row is an LSB-first bitstream of K*bits bits padded to whole bytes
// (docs/FORMAT.md "Code packing"). 2 and 4 bits fill whole bytes and take a byte-at-a-time path; any
// other width goes through a 64-bit shift register.
#include "lords/quant/pack.h"

#include "lords/core/error.h"

namespace lords::quant {
namespace {

void pack_row_generic(const uint8_t* q, int64_t K, int bits, uint8_t* out) {
  uint64_t acc = 0;  // pending bits, LSB = next bit of the stream
  int n = 0;         // number of pending bits
  for (int64_t k = 0; k < K; ++k) {
    acc |= static_cast<uint64_t>(q[k]) << n;
    n += bits;
    while (n >= 8) {
      *out++ = static_cast<uint8_t>(acc);
      acc >>= 8;
      n -= 8;
    }
  }
  if (n > 0) *out = static_cast<uint8_t>(acc);  // zero-padded tail byte
}

void unpack_row_generic(const uint8_t* p, int64_t K, int bits, uint8_t* q) {
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  uint64_t acc = 0;
  int n = 0;
  for (int64_t k = 0; k < K; ++k) {
    if (n < bits) {
      acc |= static_cast<uint64_t>(*p++) << n;
      n += 8;
    }
    q[k] = static_cast<uint8_t>(acc & mask);
    acc >>= bits;
    n -= bits;
  }
}

void pack_row_4(const uint8_t* q, int64_t K, uint8_t* out) {
  const int64_t full = K / 2;
  for (int64_t j = 0; j < full; ++j) out[j] = static_cast<uint8_t>(q[2 * j] | (q[2 * j + 1] << 4));
  if (K % 2) out[full] = q[K - 1];
}

void unpack_row_4(const uint8_t* p, int64_t K, uint8_t* q) {
  const int64_t full = K / 2;
  for (int64_t j = 0; j < full; ++j) {
    q[2 * j] = p[j] & 0xF;
    q[2 * j + 1] = p[j] >> 4;
  }
  if (K % 2) q[K - 1] = p[full] & 0xF;
}

void pack_row_2(const uint8_t* q, int64_t K, uint8_t* out) {
  const int64_t full = K / 4;
  for (int64_t j = 0; j < full; ++j) {
    const uint8_t* c = q + 4 * j;
    out[j] = static_cast<uint8_t>(c[0] | (c[1] << 2) | (c[2] << 4) | (c[3] << 6));
  }
  if (K % 4) {
    uint8_t b = 0;
    for (int64_t k = 4 * full; k < K; ++k) b = static_cast<uint8_t>(b | (q[k] << (2 * (k - 4 * full))));
    out[full] = b;
  }
}

void unpack_row_2(const uint8_t* p, int64_t K, uint8_t* q) {
  const int64_t full = K / 4;
  for (int64_t j = 0; j < full; ++j) {
    const uint8_t b = p[j];
    q[4 * j] = b & 3;
    q[4 * j + 1] = (b >> 2) & 3;
    q[4 * j + 2] = (b >> 4) & 3;
    q[4 * j + 3] = b >> 6;
  }
  for (int64_t k = 4 * full; k < K; ++k) q[k] = (p[full] >> (2 * (k - 4 * full))) & 3;
}

void check_bits(int bits) {
  LORDS_CHECK(bits >= 1 && bits <= 8, ErrorKind::Usage, "[pack] bits must be in [1, 8], got {}", bits);
}

}  // namespace

int64_t packed_row_bytes(int64_t K, int bits) { return (K * bits + 7) / 8; }

std::vector<uint8_t> pack_codes(const uint8_t* codes, int64_t N, int64_t K, int bits) {
  check_bits(bits);
  const int64_t rb = packed_row_bytes(K, bits);
  std::vector<uint8_t> out(static_cast<size_t>(N * rb), 0);
  // Codes wider than `bits` would corrupt their neighbours in the stream: an internal invariant.
  uint8_t any = 0;
  for (int64_t i = 0; i < N * K; ++i) any |= codes[i];
  LORDS_ASSERT(bits == 8 || (any >> bits) == 0);
  for (int64_t n = 0; n < N; ++n) {
    const uint8_t* q = codes + n * K;
    uint8_t* o = out.data() + n * rb;
    if (bits == 4) {
      pack_row_4(q, K, o);
    } else if (bits == 2) {
      pack_row_2(q, K, o);
    } else {
      pack_row_generic(q, K, bits, o);
    }
  }
  return out;
}

void unpack_codes(const uint8_t* packed, int64_t N, int64_t K, int bits, uint8_t* codes) {
  check_bits(bits);
  const int64_t rb = packed_row_bytes(K, bits);
  for (int64_t n = 0; n < N; ++n) {
    const uint8_t* p = packed + n * rb;
    uint8_t* q = codes + n * K;
    if (bits == 4) {
      unpack_row_4(p, K, q);
    } else if (bits == 2) {
      unpack_row_2(p, K, q);
    } else {
      unpack_row_generic(p, K, bits, q);
    }
  }
}

}  // namespace lords::quant
