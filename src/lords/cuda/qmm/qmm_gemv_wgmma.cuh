// The single-token qmatmul kernel on Hopper warpgroup MMA (M = 1, low-rank scales, rank <= 64, sm_90a).
//
// Same product as qmm_gemv.cuh, y[n] = sum_j B[n,j] Z[n,j] with Z = L · Xr^T (L the code levels,
// Xr^T[k,j] = A[j,k] x[k]), and the same code stream and pair-table lookups. What changes is who
// multiplies the levels by Xr^T's N = 8 * ceil(r / 8) columns:
// - qmm_gemv.cuh: each warp, by mma.sync m16n8k16, N / 8 of them per 16 x 16 weight tile, every
//   one preceded by an ldmatrix of Xr^T from shared memory (amortized over only 2 row tiles);
// - here: the warpgroup, by one wgmma m64nNk16 per 64 x 16 weights, the four warps' level fragments
//   (the A operand, in registers, in exactly the order the lookups produce) against Xr^T read by the
//   tensor cores straight from shared memory. No ldmatrix is left, the shared-memory reads of Xr^T
//   are shared by 64 rows instead of 32, and the instruction count per weight falls by N / 8 mma and
//   the ldmatrix to a quarter of one wgmma.
// Xr^T sits in shared memory as one tile per 64-k group: N rows (rank columns j) of 64 k, 128-byte
// swizzled (wgmma's K-major B layout), built once per block from A^T and x, which the prologue
// stages above the pair table by cp.async (one round trip). The build is a transpose (A^T is staged
// k-major, the tiles are j-major); each thread moves 4 j x 8 k per step with vector loads.
// Measured on the H100 (docs/BENCHMARKS.md 7.1f): at M = 1, 1.00-1.07x the time of our NF4 kernel,
// where qmm_gemv.cuh takes 1.12-1.31x.
//
// The warpgroup walks chunks of 64 rows (warp w of the warpgroup: row tile 4c + w) over its K slice,
// one item per (chunk, group): 16 lookups, 4 wgmma, one commit. The level registers are
// double-buffered by item parity; an item waits only for the MMAs of the item two back before it
// rebuilds that buffer. Persistent blocks, K slices and atomics as in qmm_gemv.cuh.
#pragma once

#include <utility>

#include "lords/cuda/qmm/qmm_gemv.cuh"
#include "lords/cuda/qmm/wgmma.cuh"

namespace lords::cuda::qmm {

// The staging area of A^T's rows and x (the prologue's) starts right above the pair table.
constexpr uint32_t kGemvWgStageAt = 0x20000;

template <class T, int BITS, int N>
struct GemvWgSmem {
  static_assert(kGemvLutAt + PairTable<BITS>::kWords * 4 <= kGemvWgStageAt);
  // Bytes a slice of groups_per_split groups needs below the table (the Xr^T tiles, + 1024: the
  // first tile is 1024-aligned, as the 128-byte swizzle needs) and above it (staged A^T rows and x);
  // the larger of the two, against kSliceRoom.
  static size_t slices(int groups_per_split, int rp) {
    const size_t below = 1024 + size_t(groups_per_split) * N * 128;
    const size_t above = size_t(groups_per_split) * 64 * (rp + 1) * sizeof(T);
    return below > above ? below : above;
  }
  static constexpr size_t kSliceRoom = GemvSmem<T, BITS, true>::kSliceRoom;
  // Dynamic shared memory to ask for: the staging area ends at most kSliceRoom above its start.
  static constexpr size_t kBytes = kGemvWgStageAt + kSliceRoom;
};

// grid y = K slices of p.groups_per_split groups, grid x = blocks per slice; WG warpgroups per
// block. N: Xr^T columns (8, 16, ..., 64), at least the rank, at most the padded rank rp. PF: items
// of codes in registers (even: the level buffer of an item is its ring slot's parity).
template <class T, int BITS, int N, int WG, int PF>
__global__ void __launch_bounds__(WG * 128, 1) qmm_gemv_wg_kernel(const QmmParams p) {
  using A = Act<T>;
  using MMA = Wgmma<T, N>;
  constexpr int JC = N / 8;
  constexpr int kThreads = WG * 128;
  static_assert(PF % 2 == 0, "the level buffer alternates with the ring slot");
  extern __shared__ uint4 smem_raw[];
  const uint32_t base = smem_addr(smem_raw);
  const uint32_t xr_at = (base + 1023u) & ~1023u;
  char* xr = reinterpret_cast<char*>(smem_raw) + (xr_at - base);
  uint32_t* lut = reinterpret_cast<uint32_t*>(reinterpret_cast<char*>(smem_raw) + (kGemvLutAt - base));

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wq = warp & 3;
  const int g = lane >> 2, t = lane & 3;
  const int64_t groups_total = p.Kp / 64;
  const int64_t g_begin = int64_t(blockIdx.y) * p.groups_per_split;
  // Every slice walks groups_per_split groups (a multiple of PF, so that a chunk's items fill whole
  // turns of the register ring); those past K (the last slice) have no codes and zero Xr^T.
  const int ng = p.groups_per_split;
  const int ng_real = int(min(int64_t(ng), groups_total - g_begin));
  const int64_t kbase = g_begin * 64;
  if (tid == 0 && (xr_at + uint32_t(ng) * N * 128 > kGemvLutAt ||
                   kGemvWgStageAt + uint32_t(ng) * 64 * (p.rp + 1) * sizeof(T) > base + GemvWgSmem<T, BITS, N>::kBytes))
    __trap();  // the launcher's bounds

  // This warpgroup's chunks of 4 row tiles; warp wq takes tile wq of each.
  const int64_t tiles = (p.row_end - p.row_begin + 15) / 16;
  const int64_t chunks = (tiles + 3) / 4;
  const int64_t w0 = int64_t(blockIdx.x) * WG + (warp >> 2), wstride = int64_t(gridDim.x) * WG;
  const int my_chunks = w0 < chunks ? int((chunks - w0 + wstride - 1) / wstride) : 0;
  const int n_items = my_chunks * ng;  // equal for the four warps: the MMAs are warpgroup-wide
  const int64_t rt_first = p.row_begin / 16 + w0 * 4 + wq;
  auto tile_valid = [&](int j) { return (w0 + int64_t(j) * wstride) * 4 + wq < tiles; };

  const int64_t rs = p.code_rt_stride;
  const uint8_t* lptr = p.codes + lane * lane_code_bytes<BITS>() + rt_first * rs + g_begin * p.code_group_stride;
  const int64_t lptr_jump = wstride * 4 * rs - ng * p.code_group_stride;
  const int hi_off = 256 - 4 * lane;
  int lg = 0, lj = 0;
  const bool tile0 = tile_valid(0);
  bool lv = my_chunks > 0 && ng_real > 0 && tile0;
  auto load_next = [&](GroupCodes& c) {
    if (lv) load_group_at<BITS>(c, lptr, hi_off);
    else c = GroupCodes{{0, 0, 0, 0}};
    lptr += p.code_group_stride;
    if (++lg == ng) lg = 0, ++lj, lptr += lptr_jump;
    lv = (lj < my_chunks) & (lg < ng_real) & tile_valid(lj);  // no branches (see the stream)
  };

  if (tid == 0 && ng % PF != 0) __trap();  // launcher's choice
  // 1. The first items' codes go out before anything else.
  GroupCodes cw[PF];
#pragma unroll
  for (int s = 0; s < PF; ++s) {
    if (s < n_items) load_next(cw[s]);
    else cw[s] = GroupCodes{{0, 0, 0, 0}};
  }

  // 2. Xr^T tiles: row j of group gi's tile holds x[k] A[j,k] for its 64 k, 16-byte chunk c at chunk
  // c ^ (j % 8); zero for j >= rp, k >= K and the groups past K. A^T's rows and x arrive by cp.async
  // in one round trip into a staging area above the pair table, which is built while they travel.
  // (Reading them element by element from global memory cost several round trips.)
  {
    T* st_at = reinterpret_cast<T*>(reinterpret_cast<char*>(smem_raw) + (kGemvWgStageAt - base));
    T* st_x = st_at + ng * 64 * p.rp;
    const T* AT = static_cast<const T*>(p.AT) + kbase * p.rp;
    for (int i = tid; i < ng_real * 8 * p.rp; i += kThreads) cp_async16(st_at + i * 8, AT + i * 8);
    cp_async_commit();
    build_pair_table<T, BITS>(lut, p.levels, tid, kThreads);
    // Up to here only the weights: launched early (programmatic dependent launch), this block has
    // overlapped the kernel before it so far; x is that kernel's output.
    grid_dependency_wait();
    load_x_tile<T>(st_x, ng * 64, static_cast<const T*>(p.X), 1, p.K, p.x_vec, 0, 1, kbase, ng * 64, tid, kThreads);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    // A thread builds the chunks of 4 consecutive j for 8 consecutive k: one 16-byte load of x and 8
    // 8-byte loads of staged A^T rows (consecutive threads take consecutive j quads, so a warp's
    // loads of a row are one run), then 4 chunk stores. Aligned: x's staging starts at a multiple of
    // 16 bytes (ng * 64 * rp elements above A^T's) and kr is a multiple of 8; A^T rows are rp (a
    // multiple of 16) elements and j a multiple of 4.
    constexpr int JQ = N / 4;
    for (int i = tid; i < ng * JQ * 8; i += kThreads) {
      const int j = 4 * (i % JQ), c = (i / JQ) % 8, gi = i / (JQ * 8);
      const int kr = gi * 64 + c * 8;
      uint32_t out[4][4] = {};  // [j - 4 jq][word]
      if (gi < ng_real) {
        alignas(16) T xv[8];
        *reinterpret_cast<uint4*>(xv) = *reinterpret_cast<const uint4*>(st_x + kr);
#pragma unroll
        for (int e = 0; e < 8; e += 2) {
          alignas(8) T a0[4];
          alignas(8) T a1[4];
          *reinterpret_cast<uint2*>(a0) = *reinterpret_cast<const uint2*>(st_at + (kr + e) * p.rp + j);
          *reinterpret_cast<uint2*>(a1) = *reinterpret_cast<const uint2*>(st_at + (kr + e + 1) * p.rp + j);
          const float x0 = A::to_float(xv[e]), x1 = A::to_float(xv[e + 1]);
#pragma unroll
          for (int q = 0; q < 4; ++q)
            out[q][e / 2] = as_u32(A::pack(A::to_float(a0[q]) * x0, A::to_float(a1[q]) * x1));
        }
      }
#pragma unroll
      for (int q = 0; q < 4; ++q)
        *reinterpret_cast<uint4*>(xr + (gi * N + j + q) * 128 + ((c ^ ((j + q) & 7)) << 4)) =
            make_uint4(out[q][0], out[q][1], out[q][2], out[q][3]);
    }
  }
  fence_proxy_async_smem();
  __syncthreads();
  grid_dependents_launch();

  // 3. The stream. acc[4 jc + i]: row g + 8 (i / 2) of this warp's tile, column 8 jc + 2t + i % 2.
  float acc[MMA::kAcc];
#pragma unroll
  for (int i = 0; i < MMA::kAcc; ++i) acc[i] = 0.f;
  uint32_t lev[2][4][4];  // [item parity][k16 step][register]
  const uint32_t lane_at = kGemvLutAt | uint32_t(lane) * 4;
  const uint64_t desc0 = smem_desc_kmajor<128>(xr_at);
  constexpr uint64_t kGroupDesc = N * 128 / 16;  // one group's tile, in the descriptor's 16-byte units

  const bool atomic = gridDim.y > 1;
  const T* bptr = static_cast<const T*>(p.B) + (rt_first * 16 + g) * p.rp + 2 * t;
  const int64_t chunk_rows = wstride * 64;
  int64_t row0 = rt_first * 16 + g;
  uint32_t bq[JC][2];
  auto load_b = [&](bool valid) { load_b_pairs<T, JC>(bq, bptr, p.rp, valid); };
  auto finish_chunk = [&](bool valid) {
    float y0, y8;
    lowrank_row_pair<T, JC>(y0, y8, bq, [&](int jc, int i) { return acc[4 * jc + i]; });
    if (valid && t == 0) store_row_pair(p.Y, p.N, row0, y0, y8, atomic);
    row0 += chunk_rows;
    bptr += chunk_rows * p.rp;
    // Zeroed here, before the next item's fence: a run-time accumulate flag (a setp inside the
    // pipeline stage) makes ptxas serialize every wgmma.
#pragma unroll
    for (int i = 0; i < MMA::kAcc; ++i) acc[i] = 0.f;
  };

  // One item: the codes in ring slot S (level buffer S % 2) against group gi's Xr^T tile. No
  // branch may sit between an item's MMAs and the next item's (ptxas would then serialize every
  // wgmma): the chunk's end is the end of its loop, and the load stream's branches touch no MMA
  // operand.
  auto item = [&](auto S_, int gi) {
    constexpr int S = decltype(S_)::value;
    constexpr int PAR = S % 2;
    // The MMAs of the item two back read lev[PAR]: wait for them (all but the last group).
    wgmma_wait<1>();
    auto lookups = [&](auto K_) {
      constexpr int K = decltype(K_)::value;
      lev[PAR][K][0] = lds_u32(pair_address<BITS, K, 0>(cw[S], lane_at));
      lev[PAR][K][1] = lds_u32(pair_address<BITS, K, 1>(cw[S], lane_at));
      lev[PAR][K][2] = lds_u32(pair_address<BITS, K, 2>(cw[S], lane_at));
      lev[PAR][K][3] = lds_u32(pair_address<BITS, K, 3>(cw[S], lane_at));
    };
    lookups(std::integral_constant<int, 0>{});
    lookups(std::integral_constant<int, 1>{});
    lookups(std::integral_constant<int, 2>{});
    lookups(std::integral_constant<int, 3>{});
    load_next(cw[S]);  // past the stream's end it loads nothing (no branch here: see above)
    const uint64_t desc = desc0 + uint64_t(gi) * kGroupDesc;
    wgmma_fence_operands(acc);
    wgmma_fence();
    MMA::mma(acc, lev[PAR][0], desc, 1);
    MMA::mma(acc, lev[PAR][1], desc + 2, 1);
    MMA::mma(acc, lev[PAR][2], desc + 4, 1);
    MMA::mma(acc, lev[PAR][3], desc + 6, 1);
    wgmma_commit();
  };

  // A chunk's groups, PF items at a time (ring slots 0..PF-1 as compile-time indices).
  auto ring = [&]<int... S>(std::integer_sequence<int, S...>, int gi) {
    (item(std::integral_constant<int, S>{}, gi + S), ...);
  };
  for (int j = 0; j < my_chunks; ++j) {
    const bool valid = tile_valid(j);
    load_b(valid);
    for (int gi = 0; gi < ng; gi += PF) ring(std::make_integer_sequence<int, PF>{}, gi);
    wgmma_wait<0>();  // (so nothing is in flight after the last chunk either)
    wgmma_fence_operands(acc);
    finish_chunk(valid);
  }
}

}  // namespace lords::cuda::qmm
