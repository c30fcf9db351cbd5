// GGUF block dequantization to fp32 and the ggml type table. Each block stores its own scale(s), so
// a tensor is dequantized block by block: y = d * q (symmetric types) or y = d * q - m (types with a min).
// Block layouts follow ggml (ggml-common.h block_q*_*, ggml-quants.c dequantize_row_q*) and gguf-py
// (gguf/quants.py); QK_K = 256 for the K-quants. The float operations follow those references' order
// so results are bit-identical. In "d * q - m" the product is exact in fp32 (an 11-bit fp16 mantissa
// times a <= 6-bit sub-scale times a <= 5-bit quant needs at most 22 bits), so an FMA the compiler may
// form (-mfma) rounds the same way as a separate multiply and subtract.
#include <array>
#include <cstring>

#include "lords/core/dtype.h"
#include "lords/core/error.h"
#include "lords/io/gguf.h"

namespace lords::io {
namespace {

constexpr int64_t kQK = 32;    // elements per block of Q4_0/Q4_1/Q8_0
constexpr int64_t kQKK = 256;  // elements per super-block of the K-quants

struct TypeRow {
  GgmlType type;
  GgmlTypeTraits traits;
};

constexpr std::array<TypeRow, 9> kTypes = {{
    {GgmlType::F32, {"F32", 1, 4}},
    {GgmlType::F16, {"F16", 1, 2}},
    {GgmlType::BF16, {"BF16", 1, 2}},
    {GgmlType::Q8_0, {"Q8_0", kQK, 2 + kQK}},                               // d, qs[32]
    {GgmlType::Q4_0, {"Q4_0", kQK, 2 + kQK / 2}},                           // d, qs[16]
    {GgmlType::Q4_1, {"Q4_1", kQK, 4 + kQK / 2}},                           // d, m, qs[16]
    {GgmlType::Q4_K, {"Q4_K", kQKK, 4 + 12 + kQKK / 2}},                    // d, dmin, scales[12], qs[128]
    {GgmlType::Q5_K, {"Q5_K", kQKK, 4 + 12 + kQKK / 8 + kQKK / 2}},         // ... qh[32], qs[128]
    {GgmlType::Q6_K, {"Q6_K", kQKK, kQKK / 2 + kQKK / 4 + kQKK / 16 + 2}},  // ql[128], qh[64], scales[16], d
}};

float load_fp16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_f32(h);
}

void dequant_f32(const uint8_t* src, int64_t n, float* out) { std::memcpy(out, src, static_cast<size_t>(n) * 4); }

void dequant_f16(const uint8_t* src, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = load_fp16(src + 2 * i);
}

void dequant_bf16(const uint8_t* src, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    out[i] = bf16_to_f32(h);
  }
}

// y = d * q, q int8.
void dequant_q8_0(const uint8_t* b, float* y) {
  const float d = load_fp16(b);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}

// y = d * (q - 8); low nibbles are elements 0..15, high nibbles 16..31.
void dequant_q4_0(const uint8_t* b, float* y) {
  const float d = load_fp16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = d * static_cast<float>((qs[j] & 0x0f) - 8);
    y[j + kQK / 2] = d * static_cast<float>((qs[j] >> 4) - 8);
  }
}

// y = d * q + m, nibbles as in Q4_0.
void dequant_q4_1(const uint8_t* b, float* y) {
  const float d = load_fp16(b);
  const float m = load_fp16(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = d * static_cast<float>(qs[j] & 0x0f) + m;
    y[j + kQK / 2] = d * static_cast<float>(qs[j] >> 4) + m;
  }
}

// The 8 sub-block (scale, min) pairs of Q4_K/Q5_K, 6 bits each, packed into 12 bytes: bytes 0-3 hold
// scales 0-3 (low 6 bits) and the top 2 bits of scales 4-7, bytes 4-7 the same for the mins, and
// bytes 8-11 the low 4 bits of scale (low nibble) and min (high nibble) 4-7.
void unpack_scale_min_k4(const uint8_t* q, int j, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Q4_K and Q5_K share everything except the fifth bit: 8 sub-blocks of 32, y = d*sc * q - dmin*m.
// qs holds sub-blocks (2i, 2i+1) as the low/high nibbles of 32 bytes; Q5_K's qh bit 2i / 2i+1 of byte l
// adds 16 to element l of those sub-blocks.
void dequant_k4_k5(const uint8_t* b, const uint8_t* qh, const uint8_t* qs, float* y) {
  const float d = load_fp16(b);
  const float dmin = load_fp16(b + 2);
  const uint8_t* scales = b + 4;
  for (int sub = 0; sub < 8; ++sub) {
    uint8_t sc, m;
    unpack_scale_min_k4(scales, sub, &sc, &m);
    const float d1 = d * static_cast<float>(sc);
    const float m1 = dmin * static_cast<float>(m);
    const int shift = (sub & 1) * 4;
    const uint8_t* q = qs + (sub / 2) * 32;
    for (int l = 0; l < 32; ++l) {
      int v = (q[l] >> shift) & 0x0f;
      if (qh != nullptr && ((qh[l] >> sub) & 1)) v += 16;
      y[sub * 32 + l] = d1 * static_cast<float>(v) - m1;
    }
  }
}

void dequant_q4_k(const uint8_t* b, float* y) { dequant_k4_k5(b, nullptr, b + 16, y); }
void dequant_q5_k(const uint8_t* b, float* y) { dequant_k4_k5(b, b + 16, b + 16 + kQKK / 8, y); }

// 16 sub-blocks of 16 with int8 scales: y = d*sc * (q - 32), q 6 bits = 4 from ql + 2 from qh.
// Each half of 128 elements uses 64 ql bytes (rows l and l+32, low then high nibble) and 32 qh bytes
// (2 bits per 32-element quarter).
void dequant_q6_k(const uint8_t* b, float* y) {
  const float d = load_fp16(b + kQKK / 2 + kQKK / 4 + kQKK / 16);
  const int8_t* scales = reinterpret_cast<const int8_t*>(b + kQKK / 2 + kQKK / 4);
  for (int half = 0; half < 2; ++half) {
    const uint8_t* ql = b + half * 64;
    const uint8_t* qh = b + kQKK / 2 + half * 32;
    const int8_t* sc = scales + half * 8;
    float* yh = y + half * 128;
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      yh[l] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
      yh[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      yh[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      yh[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
  }
}

using BlockFn = void (*)(const uint8_t* block, float* out);

BlockFn block_fn(GgmlType t) {
  switch (t) {
    case GgmlType::Q8_0: return dequant_q8_0;
    case GgmlType::Q4_0: return dequant_q4_0;
    case GgmlType::Q4_1: return dequant_q4_1;
    case GgmlType::Q4_K: return dequant_q4_k;
    case GgmlType::Q5_K: return dequant_q5_k;
    case GgmlType::Q6_K: return dequant_q6_k;
    default: return nullptr;
  }
}

const TypeRow* find_row(std::string_view name) {
  for (const auto& r : kTypes)
    if (r.traits.name == name) return &r;
  return nullptr;
}

}  // namespace

const GgmlTypeTraits* ggml_type_traits(uint32_t type) {
  for (const auto& r : kTypes)
    if (static_cast<uint32_t>(r.type) == type) return &r.traits;
  return nullptr;
}

const GgmlTypeTraits* ggml_type_traits(std::string_view name) {
  const TypeRow* r = find_row(name);
  return r != nullptr ? &r->traits : nullptr;
}

void gguf_dequantize(std::string_view type_name, const uint8_t* src, int64_t n, float* out) {
  const TypeRow* r = find_row(type_name);
  LORDS_CHECK(r != nullptr, ErrorKind::Unsupported, "[gguf] cannot dequantize type '{}'", type_name);
  LORDS_CHECK(n >= 0 && n % r->traits.block_elems == 0, ErrorKind::Usage,
              "[gguf] {} elements of {} are not a whole number of {}-element blocks", n, type_name,
              r->traits.block_elems);
  if (n == 0) return;  // an empty tensor's buffers may be null, which memcpy must not see
  switch (r->type) {
    case GgmlType::F32: return dequant_f32(src, n, out);
    case GgmlType::F16: return dequant_f16(src, n, out);
    case GgmlType::BF16: return dequant_bf16(src, n, out);
    default: break;
  }
  const BlockFn fn = block_fn(r->type);
  LORDS_ASSERT(fn != nullptr);
  const int64_t n_blocks = n / r->traits.block_elems;
  for (int64_t i = 0; i < n_blocks; ++i) fn(src + i * r->traits.block_bytes, out + i * r->traits.block_elems);
}

}  // namespace lords::io
