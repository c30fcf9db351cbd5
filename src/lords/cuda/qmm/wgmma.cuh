// Hopper warpgroup MMA (sm_90a): the scale tile S = B · A of a LoRDS weight computed 64 rows x 64
// columns at a time by one warpgroup, B (the weight rows' factors) from registers, A^T from shared
// memory in the no-swizzle core-matrix layout.
//
// Shared-memory operand layout ("core matrices", PTX ISA, wgmma matrix descriptors): an 8 x 8 block of
// 16-bit values (8 rows of 16 bytes) is 128 contiguous bytes. For B = A^T (N = k columns, K = rank),
// K-major: core matrix (n8, j8) sits at ((n8 * (rp / 8)) + j8) * 128 bytes, so the next core matrix
// along the rank (K) is +128 bytes (the descriptor's leading byte offset) and along k (N) is
// +rp/8 * 128 bytes (the stride byte offset).
//
// Accumulator registers of warp w of the warpgroup are its 16 rows, in the m16n8 order of mma.sync
// repeated along N: for f16 accumulators register 2i holds (row g, columns 8i+2t, 8i+2t+1) and
// 2i+1 the same columns of row g+8; for f32 registers 4i..4i+3 hold those four values one each.
#pragma once

#include <cstdint>

namespace lords::cuda::qmm {

__device__ __forceinline__ uint64_t wgmma_desc(uint32_t smem_byte_addr, uint32_t lead_bytes, uint32_t stride_bytes) {
  uint64_t d = 0;
  d |= uint64_t((smem_byte_addr & 0x3FFFF) >> 4);
  d |= uint64_t((lead_bytes & 0x3FFFF) >> 4) << 16;
  d |= uint64_t((stride_bytes & 0x3FFFF) >> 4) << 32;
  return d;  // base offset 0, swizzle mode 0 (none)
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Shared memory written by the generic proxy (cp.async, st.shared) and read next by wgmma.
__device__ __forceinline__ void fence_proxy_async_smem() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
// Keeps the compiler from moving register reads or writes of accumulators across wgmma_wait.
__device__ __forceinline__ void reg_fence(uint32_t& r) { asm volatile("" : "+r"(r)::"memory"); }
__device__ __forceinline__ void reg_fence(float& r) { asm volatile("" : "+f"(r)::"memory"); }

// D (64 x 64, f16) (+)= A (64 x 16, fp16 registers) · B (16 x 64, descriptor). accumulate: 0 or 1.
__device__ __forceinline__ void wgmma_m64n64k16_f16(uint32_t (&d)[16], const uint32_t (&a)[4], uint64_t desc,
                                                    int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %21, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f16.f16.f16 "
      "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}, {%16,%17,%18,%19}, %20, p, 1, 1, 0;\n}\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]),
        "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(accumulate));
}

// D (64 x 64, f32) (+)= A (64 x 16, bf16 registers) · B (16 x 64, descriptor).
__device__ __forceinline__ void wgmma_m64n64k16_f32_bf16(float (&d)[32], const uint32_t (&a)[4], uint64_t desc,
                                                         int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,"
      "%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, p, 1, 1, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(accumulate));
}

}  // namespace lords::cuda::qmm
