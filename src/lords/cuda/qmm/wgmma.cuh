// Hopper warpgroup MMA (sm_90a PTX): the fence / commit / wait of the asynchronous pipeline, the
// shared-memory matrix descriptor of a 128-byte-swizzled K-major tile, and wgmma.mma_async
// m64nNk16 with the A operand (64 x 16) in registers and B (16 x N) in shared memory, fp32
// accumulators. Compiled to a trap where the target is not sm_90a (callers check the device first).
//
// Register A: warp w of the warpgroup holds rows 16w..16w+15 in the mma.sync m16n8k16 A-fragment
// order (fragment_layout.h). Accumulator d[4j + i]: row 16w + g + 8*(i/2), column 8j + 2t + (i%2).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace lords::cuda::qmm {

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define LORDS_WGMMA 1
#else
#define LORDS_WGMMA 0
#endif

__device__ __forceinline__ void wgmma_fence() {
#if LORDS_WGMMA
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#else
  __trap();
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#if LORDS_WGMMA
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
#if LORDS_WGMMA
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
// Keeps the compiler from moving accesses of the accumulators across the pipeline's fences.
template <int N>
__device__ __forceinline__ void wgmma_fence_operands(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
template <int N>
__device__ __forceinline__ void wgmma_fence_operands(uint32_t (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+r"(r[i])::"memory");
}

// Descriptor of a K-major tile of rows of ROW_BYTES (128, 64 or 32: 64, 32 or 16 16-bit elements),
// stored with the matching swizzle (16-byte chunk c of row r at chunk c ^ (r % 8) for 128 bytes,
// the narrower patterns of the 64- and 32-byte modes likewise), aligned to 8 rows: 8-row groups
// 8 * ROW_BYTES apart (SBO). The k16 step s of the row starts 32 s bytes in: add 2 s to the
// descriptor.
template <int ROW_BYTES = 128>
__device__ __forceinline__ uint64_t smem_desc_kmajor(uint32_t smem_addr) {
  static_assert(ROW_BYTES == 128 || ROW_BYTES == 64 || ROW_BYTES == 32);
  constexpr uint64_t mode = ROW_BYTES == 128 ? 1 : ROW_BYTES == 64 ? 2 : 3;
  uint64_t d = (smem_addr & 0x3FFFFu) >> 4;
  d |= uint64_t(1) << 16;                  // LBO (unused with a swizzle)
  d |= uint64_t(8 * ROW_BYTES >> 4) << 32;  // SBO
  d |= mode << 62;                         // swizzle mode
  return d;
}

// Makes this thread's shared-memory stores (generic proxy) visible to wgmma's operand reads (async
// proxy); each writing thread fences before the barrier that precedes the MMAs.
__device__ __forceinline__ void fence_proxy_async_smem() {
#if LORDS_WGMMA
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// mbarrier + TMA: the X tiles (wgmma's B operand) arrive by the tensor memory accelerator, which
// writes through the async proxy that wgmma reads through, so no proxy fence is needed (the fence
// after cp.async writes, MEMBAR.ALL.CTA, would wait for every load in flight, prefetches included).
__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
#if LORDS_WGMMA
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
#endif
}
__device__ __forceinline__ void mbar_init_fence() {
#if LORDS_WGMMA
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
#if LORDS_WGMMA
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
#endif
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
#if LORDS_WGMMA
  asm volatile(
      "{\n.reg .pred done;\nwait_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra wait_%=;\n}\n" ::"r"(bar), "r"(parity)
      : "memory");
#endif
}
// One arrival (the consumers' "this buffer is free again" to the producer).
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
#if LORDS_WGMMA
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
#endif
}
// Barrier 1 over the first `threads` threads that reach it (the consumer warpgroups; the producer
// has left by then).
__device__ __forceinline__ void named_barrier_sync(int threads) {
  asm volatile("bar.sync 1, %0;\n" ::"r"(threads) : "memory");
}
// The stream-K handshake between two blocks (qmm_wgmma.cuh): a flag in global memory, raised with
// release semantics after the raising block's Y stores (each thread fenced them, then a barrier),
// waited for with acquire semantics and lowered again by the waiter, so it is zero between calls.
__device__ __forceinline__ void flag_raise(int* flag) {
#if LORDS_WGMMA
  asm volatile("st.release.gpu.global.b32 [%0], %1;\n" ::"l"(flag), "r"(1) : "memory");
#endif
}
__device__ __forceinline__ void flag_wait_lower(int* flag) {
#if LORDS_WGMMA
  int v = 0;
  for (;;) {
    asm volatile("ld.acquire.gpu.global.b32 %0, [%1];\n" : "=r"(v) : "l"(flag) : "memory");
    if (v != 0) break;
    __nanosleep(100);
  }
  asm volatile("st.relaxed.gpu.global.b32 [%0], %1;\n" ::"l"(flag), "r"(0) : "memory");
#endif
}
// y[0] += a, y[1] += b in one vector reduction (8-byte aligned y; sm_90).
__device__ __forceinline__ void red_add_f32x2(float* y, float a, float b) {
#if LORDS_WGMMA
  asm volatile("red.global.add.v2.f32 [%0], {%1, %2};\n" ::"l"(y), "f"(a), "f"(b) : "memory");
#else
  atomicAdd(y, a);
  atomicAdd(y + 1, b);
#endif
}
// Programmatic dependent launch (sm_90): a kernel launched with the programmatic-serialization
// attribute may start while the kernel before it in the stream is still running. Before it reads what
// that kernel writes (x), or writes what it reads (Y), it waits here for that kernel's completion and
// its memory; a no-op for a plain launch. Whatever comes before the wait touches only the weights.
__device__ __forceinline__ void grid_dependency_wait() {
#if LORDS_WGMMA
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
// Lets the next kernel, if launched so, start (its own wait still covers all of this one).
__device__ __forceinline__ void grid_dependents_launch() {
#if LORDS_WGMMA
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
// Warp-specialized kernels move registers from the producer warpgroup to the consumers (executed by
// every thread of a warpgroup).
template <int N>
__device__ __forceinline__ void setmaxnreg_dec() {
#if LORDS_WGMMA
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}
template <int N>
__device__ __forceinline__ void setmaxnreg_inc() {
#if LORDS_WGMMA
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}
// Box (c0 = innermost coordinate, c1) of a 2-D tensor map into shared memory, completing on bar.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const void* tmap, uint32_t bar, int c0, int c1) {
#if LORDS_WGMMA
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];\n" ::"r"(dst),
      "l"(tmap), "r"(bar), "r"(c0), "r"(c1)
      : "memory");
#endif
}

template <class T, int N>
struct Wgmma;

// Operand lists of wgmma m64nNk16 for N = 8 to 64 in steps of 8, 128 and 256 (N / 2 fp32 accumulators,
// then the four A registers, the B descriptor and the accumulate flag), one line each.

// N = 8..56: the single-token kernel's rank columns (qmm_gemv_wgmma.cuh).
#define LORDS_WGMMA_D8 "{%0,%1,%2,%3}"
#define LORDS_WGMMA_A8 "{%4,%5,%6,%7}, %8"
#define LORDS_WGMMA_P8 "%9"
#define LORDS_WGMMA_OUT8(d) "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
#define LORDS_WGMMA_D16 "{%0,%1,%2,%3,%4,%5,%6,%7}"
#define LORDS_WGMMA_A16 "{%8,%9,%10,%11}, %12"
#define LORDS_WGMMA_P16 "%13"
#define LORDS_WGMMA_OUT16(d) "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
#define LORDS_WGMMA_D24 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11}"
#define LORDS_WGMMA_A24 "{%12,%13,%14,%15}, %16"
#define LORDS_WGMMA_P24 "%17"
#define LORDS_WGMMA_OUT24(d) "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11])
#define LORDS_WGMMA_D32 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}"
#define LORDS_WGMMA_A32 "{%16,%17,%18,%19}, %20"
#define LORDS_WGMMA_P32 "%21"
#define LORDS_WGMMA_OUT32(d) "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
#define LORDS_WGMMA_D40 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19}"
#define LORDS_WGMMA_A40 "{%20,%21,%22,%23}, %24"
#define LORDS_WGMMA_P40 "%25"
#define LORDS_WGMMA_OUT40(d) "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19])
#define LORDS_WGMMA_D48 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23}"
#define LORDS_WGMMA_A48 "{%24,%25,%26,%27}, %28"
#define LORDS_WGMMA_P48 "%29"
#define LORDS_WGMMA_OUT48(d) "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23])
#define LORDS_WGMMA_D56 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27}"
#define LORDS_WGMMA_A56 "{%28,%29,%30,%31}, %32"
#define LORDS_WGMMA_P56 "%33"
#define LORDS_WGMMA_OUT56(d) "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27])
#define LORDS_WGMMA_D64 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}"
#define LORDS_WGMMA_A64 "{%32,%33,%34,%35}, %36"
#define LORDS_WGMMA_P64 "%37"
#define LORDS_WGMMA_OUT64(d) "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define LORDS_WGMMA_D128 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}"
#define LORDS_WGMMA_A128 "{%64,%65,%66,%67}, %68"
#define LORDS_WGMMA_P128 "%69"
#define LORDS_WGMMA_OUT128(d) "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
#define LORDS_WGMMA_D256 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127}"
#define LORDS_WGMMA_A256 "{%128,%129,%130,%131}, %132"
#define LORDS_WGMMA_P256 "%133"
#define LORDS_WGMMA_OUT256(d) "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])

// d (+)= A (registers) * B (descriptor); accumulate = 0 overwrites d.
#if LORDS_WGMMA
#define LORDS_WGMMA_ASM(TY, N)                                                                              \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " LORDS_WGMMA_P##N ", 0;\n"                            \
               "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TY "." TY " " LORDS_WGMMA_D##N ", "       \
               LORDS_WGMMA_A##N ", p, 1, 1, 0;\n}\n"                                                         \
               : LORDS_WGMMA_OUT##N(d)                                                                      \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate)                   \
               : "memory")
#else
#define LORDS_WGMMA_ASM(TY, N) __trap()
#endif
#define LORDS_WGMMA_SPEC(T, TY, N)                                                                          \
  template <>                                                                                               \
  struct Wgmma<T, N> {                                                                                      \
    static constexpr int kAcc = N / 2;                                                                      \
    static __device__ __forceinline__ void mma(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t desc_b, \
                                               int accumulate) {                                            \
      LORDS_WGMMA_ASM(TY, N);                                                                               \
    }                                                                                                       \
  }
LORDS_WGMMA_SPEC(__half, "f16", 8);
LORDS_WGMMA_SPEC(__nv_bfloat16, "bf16", 8);
LORDS_WGMMA_SPEC(__half, "f16", 16);
LORDS_WGMMA_SPEC(__nv_bfloat16, "bf16", 16);
LORDS_WGMMA_SPEC(__half, "f16", 24);
LORDS_WGMMA_SPEC(__nv_bfloat16, "bf16", 24);
LORDS_WGMMA_SPEC(__half, "f16", 32);
LORDS_WGMMA_SPEC(__nv_bfloat16, "bf16", 32);
LORDS_WGMMA_SPEC(__half, "f16", 40);
LORDS_WGMMA_SPEC(__nv_bfloat16, "bf16", 40);
LORDS_WGMMA_SPEC(__half, "f16", 48);
LORDS_WGMMA_SPEC(__nv_bfloat16, "bf16", 48);
LORDS_WGMMA_SPEC(__half, "f16", 56);
LORDS_WGMMA_SPEC(__nv_bfloat16, "bf16", 56);
LORDS_WGMMA_SPEC(__half, "f16", 64);
LORDS_WGMMA_SPEC(__half, "f16", 128);
LORDS_WGMMA_SPEC(__half, "f16", 256);
LORDS_WGMMA_SPEC(__nv_bfloat16, "bf16", 64);
LORDS_WGMMA_SPEC(__nv_bfloat16, "bf16", 128);
LORDS_WGMMA_SPEC(__nv_bfloat16, "bf16", 256);
#undef LORDS_WGMMA_SPEC
#undef LORDS_WGMMA_ASM

// fp16 m64n64k16 with fp16 accumulators: d holds 16 half2 registers, d[i] the pair of fp32
// accumulators 2i and 2i + 1 of the fp32 form.
__device__ __forceinline__ void wgmma_m64n64k16_f16acc(uint32_t (&d)[16], const uint32_t (&a)[4], uint64_t desc_b,
                                                       int accumulate) {
#if LORDS_WGMMA
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %21, 0;\n"
               "wgmma.mma_async.sync.aligned.m64n64k16.f16.f16.f16 "
               "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}, {%16,%17,%18,%19}, %20, p, 1, 1, 0;\n}\n"
               : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]),
                 "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate)
               : "memory");
#else
  __trap();
#endif
}

}  // namespace lords::cuda::qmm
