// Bit packing of codes. Layout (docs/FORMAT.md): each row of K codes is an LSB-first bitstream of
// K*bits bits, padded with zero bits to a whole byte; rows are concatenated. Code k of a row occupies
// bits [k*bits, (k+1)*bits) of the row's stream, bit 0 being the least significant bit of byte 0.
// For 4 bits this is "low nibble first"; for 2 bits four codes per byte, lowest first; 3-bit codes
// straddle bytes.
#pragma once

#include <cstdint>
#include <vector>

namespace lords::quant {

int64_t packed_row_bytes(int64_t K, int bits);
// codes: (N, K) values < 2^bits. Returns (N, packed_row_bytes(K, bits)) bytes.
std::vector<uint8_t> pack_codes(const uint8_t* codes, int64_t N, int64_t K, int bits);
// Inverse of pack_codes: writes (N, K) codes.
void unpack_codes(const uint8_t* packed, int64_t N, int64_t K, int bits, uint8_t* codes);

}  // namespace lords::quant
