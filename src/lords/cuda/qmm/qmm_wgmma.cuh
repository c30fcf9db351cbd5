// The Hopper prefill qmatmul kernel (17 <= M tokens, sm_90a): Y^T = W_hat · X^T on warpgroup MMA,
// with W_hat rebuilt in registers and never written anywhere.
//
// Why this shape: wgmma takes its 64 x 16 A operand from registers in exactly the mma.sync
// fragment order the codes are stored in (fragment_layout.h), so each warp rebuilds its 16 rows of
// W_hat for a k16 step the way the decode kernels do (levels from the code-pair table times the
// scale tile) and hands the registers to wgmma while the X tile (the B operand, K-major, 128-byte
// swizzled, brought by TMA) sits in shared memory. The low-rank scale tile of a k block,
// S (64 x 64) = B_tile (64 x rp) · A_tile (rp x 64), is itself a wgmma (B_tile's fragments in
// registers, the A^T tile by TMA), issued one k block ahead, before the main MMA of the current
// block, so that its result is in registers when the next block's W_hat is built. (mma.sync for S,
// as the decode kernels do, queues behind the asynchronous MMAs in flight and serializes the two.)
// For fp16 S has fp16 accumulators: the product needs it in fp16 anyway, and no conversion is left.
// The scale work is paid once per weight and token block of BN tokens, so BN is as large as
// registers allow.
//
// Warp-specialized and persistent: warpgroup 0 is the producer (one thread issuing the TMA loads of
// the X and A^T tiles into a STAGES-deep ring, waiting on each buffer's "empty" mbarrier), warpgroups
// 1 and 2 the consumers, 64 rows each, over the same BN tokens (setmaxnreg moves the producer's
// registers to them). A consumer warp waits on a buffer's "full" mbarrier, and frees the buffer of
// block i - 1 once its MMAs of block i - 1 are done; no block-wide barrier is left in the loop, and the
// producer runs ahead into the next tile while the consumers write the last one out. The W_hat
// registers are double-buffered: block i's are built while block i - 1's MMAs run. Codes (and block
// scales) come PF blocks ahead into registers.
// Tiles: token blocks fastest (tiles sharing a row block's codes run together), then row blocks, then
// K slices where rows x tokens alone would leave SMs idle (partial sums meet in Y by atomics); CTA c
// takes tiles c, c + gridDim.x, ... Where the last round would leave at least half the SMs idle, its
// tiles are split in 2..4 K parts instead (p.tail_split), which meet in Y by atomics; odd blocks then
// take their K part first, so that the blocks' tile boundaries (and Y stores) do not all coincide. Where
// the caller's workspace has flags and the tiles are 1-1.5 rounds, stream-K takes the place of those
// K parts (wgmma_walk). Needs X rows 16-byte aligned with K % 8 == 0 (TMA); the launcher checks.
#pragma once

#include <cuda.h>

#include <algorithm>
#include <type_traits>

#include "lords/cuda/qmm/qmm_device.cuh"
#include "lords/cuda/qmm/qmm_pair_table.cuh"
#include "lords/cuda/qmm/wgmma.cuh"

namespace lords::cuda::qmm {

// Shared memory: the ring of STAGES buffers (X tile and, for low-rank scales, A^T tile) and the
// compact pair table. The A^T tile's rows are the padded rank, 32, 64 or 128 bytes (rank 16, 32,
// or 48-64 with the rest zero-filled by TMA), so that rank 32 leaves room for a fifth buffer;
// STAGES is as many as fit (the deeper the ring, the further the producer runs ahead: 3 instead of
// 4 buffers measured 1.3x slower).
template <class T, int BITS, bool LOWRANK, int RC, int BN>
struct WgmmaTile {
  static constexpr int kConsumers = 2;                       // warpgroups of 64 rows
  static constexpr int kThreads = (kConsumers + 1) * 128;   // + the producer warpgroup
  static constexpr int kConsumerWarps = kConsumers * 4;
  static constexpr int kRows = kConsumers * 64;
  static constexpr int kXBytes = BN * 128;  // BN tokens x 64 k, 128-byte swizzled rows
  static constexpr int kATRowBytes = !LOWRANK ? 0 : RC == 1 ? 32 : RC == 2 ? 64 : 128;
  static constexpr int kATBytes = 64 * kATRowBytes;  // 64 k x the padded rank
  static constexpr int kPairStride = 128;
  static constexpr int kPairBytes = PairTable<BITS, kPairStride>::kWords * 4;
  static constexpr int kStageBytes = kXBytes + kATBytes;
  static constexpr int kSmemLimit = 226 * 1024;  // of the 227 KB a block may have: static smem and slack
  static constexpr int kStages = std::min(8, (kSmemLimit - 1024 - kPairBytes) / kStageBytes);
  static_assert(kStages >= 3);
  static constexpr size_t kSmemBytes = 1024 + size_t(kStages) * kStageBytes + kPairBytes;  // + 1024: tiles aligned up
};

// One k block's codes of a warp's row tile and, for block scales with G % 64 == 0, the scales of
// rows g and g + 8 (two 16-bit halves).
struct KBlockCodes {
  GroupCodes c;
  uint32_t s;
};

// The low-rank scale tile S (64 x 64) of a k block in a warpgroup's registers, as the half2 / bf162
// pairs the level products take: fp16 accumulators for fp16; for bf16 fp32 accumulators, packed as
// soon as the MMA is waited for (settle), so that only the 16 packed registers stay live while W_hat
// is built (the 32 fp32 ones there made ptxas serialize the MMAs for lack of registers).
template <class T>
struct ScaleAcc {
  float d[32];
  uint32_t h[16];
  __device__ __forceinline__ void mma(const uint32_t (&a)[4], uint64_t desc, int acc) { Wgmma<T, 64>::mma(d, a, desc, acc); }
  __device__ __forceinline__ void settle() {
    wgmma_fence_operands(d);
#pragma unroll
    for (int i = 0; i < 16; ++i) h[i] = as_u32(Act<T>::pack(d[2 * i], d[2 * i + 1]));
  }
  __device__ __forceinline__ uint32_t pair(int i) const { return h[i]; }
};
template <>
struct ScaleAcc<__half> {
  uint32_t d[16];
  __device__ __forceinline__ void mma(const uint32_t (&a)[4], uint64_t desc, int acc) { wgmma_m64n64k16_f16acc(d, a, desc, acc); }
  __device__ __forceinline__ void settle() { wgmma_fence_operands(d); }
  __device__ __forceinline__ uint32_t pair(int i) const { return d[i]; }
};

// How a unit's sums reach Y: stored; added by atomics (K split, Y zeroed first); stored and then
// flagged (stream-K: the first-computed part of a tile split between two blocks); or added by
// atomics once that flag is up (its other part).
enum class WgmmaY : int { Store, Atomic, StoreSignal, WaitAdd };

// Where a work unit sits: tokens from tok0, row block rb, k blocks [kb_begin, kb_end); how its sums
// reach Y; its stream-K flag.
struct WgmmaTilePos {
  int tok0, kb_begin, kb_end;
  int64_t rb;
  WgmmaY y;
  int64_t flag;
};
template <int BN>
__device__ __forceinline__ WgmmaTilePos wgmma_tile_pos(const QmmParams& p, int64_t t, int64_t gx, int64_t gy) {
  const int blocks_total = int(p.Kp / 64);
  WgmmaTilePos q;
  q.flag = 0;
  if (p.tail_split > 1 && t >= p.tail_begin) {  // a K part of a last-round tile
    const int64_t v = t - p.tail_begin, tile = p.tail_begin + v / p.tail_split;
    const int per = (blocks_total + p.tail_split - 1) / p.tail_split;
    q.tok0 = int(tile % gx) * BN;
    q.rb = (tile / gx) % gy;
    q.kb_begin = int(v % p.tail_split) * per;
    q.kb_end = min(q.kb_begin + per, blocks_total);
    q.y = WgmmaY::Atomic;
    return q;
  }
  q.tok0 = int(t % gx) * BN;
  q.rb = (t / gx) % gy;
  q.kb_begin = int(t / (gx * gy)) * p.groups_per_split;
  q.kb_end = min(q.kb_begin + p.groups_per_split, blocks_total);
  q.y = p.atomic ? WgmmaY::Atomic : WgmmaY::Store;
  return q;
}

// The i-th of a block's n work units (tiles, or K parts of last-round tiles). Block c takes units
// c, c + grid, ...; with p.stagger an odd block whose last unit is a K part takes that one first, so
// that its tile boundaries fall a part's length after the even blocks'. Every block ends its tiles at
// once otherwise, and Y's stores then all leave at once, 132 x 128 KB: leaving the stores out took
// 7-13 % off the time at K = 4096 (docs/BENCHMARKS.md 7.1g). Staggered, qkv at 1024 tokens measured
// 89.6-89.7 us against 93.1-93.4.
__device__ __forceinline__ int64_t wgmma_unit(const QmmParams& p, int64_t i, int64_t n) {
  const int64_t c = blockIdx.x, last = c + (n - 1) * gridDim.x;
  const bool first_last = p.stagger && (c & 1) && p.tail_split > 1 && n > 1 && last >= p.tail_begin;
  if (!first_last) return c + i * gridDim.x;
  return i == 0 ? last : c + (i - 1) * gridDim.x;
}

// A block's walk over the tiles. Without stream-K (p.sk_flags null): the units of wgmma_unit. With
// it (between one and two tiles per block, launcher's choice): the tiles are shared out evenly in k
// blocks, block c taking [lo, hi) of them; a tile cut at lo is split with block c - 1. Block c walks:
// - head: the end of the tile cut at lo, first, so that its sums are stored and flagged long before
//   block c - 1 needs them;
// - its whole tiles;
// - tail: the start of the tile cut at hi, last, added into Y once block c + 1 has flagged its head.
// Where the tiles are 1-1.5 rounds, this replaces the last round's K parts (wgmma_unit): no block
// idles, and no Y is zeroed. Measured (docs/BENCHMARKS.md 7.1i): qkv at 1024 tokens 91.0-91.3 us
// against 96.0-96.2 in the same call. Sharing out more rounds, or rounds nearly full, was slower (o
// and down at 2048 tokens by 8-10 %, down at 4096 by 70 %): the blocks then read X and the codes at
// different k, and lose the L2 hits that blocks in step share.
struct WgmmaWalk {
  int64_t n;       // units
  int64_t lo, hi;  // this block's k blocks
  int64_t f0, nf;  // its whole tiles
  int nh;          // 1: a head unit
};
__device__ __forceinline__ WgmmaWalk wgmma_walk(const QmmParams& p, int64_t tiles) {
  const int64_t c = blockIdx.x, grid = gridDim.x;
  WgmmaWalk w{};
  if (p.sk_flags == nullptr) {
    w.n = tiles > c ? (tiles - c + grid - 1) / grid : 0;
    return w;
  }
  const int64_t kb = p.Kp / 64, total = tiles * kb;
  w.lo = c * total / grid, w.hi = (c + 1) * total / grid;
  w.nh = w.lo % kb != 0;
  w.f0 = (w.lo + kb - 1) / kb;
  w.nf = w.hi / kb - w.f0;
  w.n = w.nh + w.nf + (w.hi % kb != 0);
  return w;
}
template <int BN>
__device__ __forceinline__ WgmmaTilePos wgmma_walk_pos(const QmmParams& p, const WgmmaWalk& w, int64_t i, int64_t gx,
                                                       int64_t gy) {
  if (p.sk_flags == nullptr) return wgmma_tile_pos<BN>(p, wgmma_unit(p, i, w.n), gx, gy);
  const int kb = int(p.Kp / 64);
  WgmmaTilePos q;
  q.kb_begin = 0, q.kb_end = kb, q.y = WgmmaY::Store;
  if (i < w.nh) {
    q.flag = w.lo / kb, q.kb_begin = int(w.lo % kb), q.y = WgmmaY::StoreSignal;
  } else if ((i -= w.nh) < w.nf) {
    q.flag = w.f0 + i;
  } else {
    q.flag = w.hi / kb, q.kb_end = int(w.hi % kb), q.y = WgmmaY::WaitAdd;
  }
  q.tok0 = int(q.flag % gx) * BN;  // (the flag's index is the tile's)
  q.rb = q.flag / gx;
  return q;
}

template <class T, int BITS, bool LOWRANK, int RC, int BN>
__global__ void __launch_bounds__(WgmmaTile<T, BITS, LOWRANK, RC, BN>::kThreads, 1)
    qmm_wgmma_kernel(const QmmParams p, const __grid_constant__ CUtensorMap xmap,
                     const __grid_constant__ CUtensorMap atmap) {
  using Tile = WgmmaTile<T, BITS, LOWRANK, RC, BN>;
  using MMA = Wgmma<T, BN>;
  constexpr int STAGES = Tile::kStages;
  constexpr int PF = 2;  // code blocks in flight ahead of the one being used
  extern __shared__ uint4 smem_raw[];  // (the other qmm kernels declare it so too)
  __shared__ alignas(8) uint64_t full_bar[STAGES], empty_bar[STAGES];
  const uint32_t full0 = smem_addr(full_bar), empty0 = smem_addr(empty_bar);
  // The swizzle is a function of the address bits, so the tiles must start 1024-aligned.
  const uint32_t smem0 = smem_addr(smem_raw);
  const uint32_t xs = (smem0 + 1023) & ~1023u;
  const uint32_t ats = xs + STAGES * Tile::kXBytes;
  const uint32_t ptab = ats + (LOWRANK ? STAGES * Tile::kATBytes : 0);

  const int tid = threadIdx.x;
  build_pair_table<T, BITS, Tile::kPairStride>(reinterpret_cast<uint32_t*>(smem_raw) + (ptab - smem0) / 4, p.levels, tid, Tile::kThreads);
  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(full0 + 8 * s, 1);
      mbar_init(empty0 + 8 * s, Tile::kConsumerWarps);
    }
    mbar_init_fence();
  }
  __syncthreads();
  // Launched early (programmatic dependent launch), the block has built its table while the kernel
  // before it ended; X and Y are that kernel's to finish with first.
  grid_dependency_wait();
  grid_dependents_launch();

  const int64_t gx = (p.M + BN - 1) / BN;
  const int64_t gy = (p.row_end - p.row_begin + Tile::kRows - 1) / Tile::kRows;
  const int64_t tiles = p.tail_split > 1 ? p.tail_begin + (gx * gy - p.tail_begin) * p.tail_split
                                         : gx * gy * ((p.Kp / 64 + p.groups_per_split - 1) / p.groups_per_split);
  const WgmmaWalk walk = wgmma_walk(p, tiles);

  if (tid < 128) {  // the producer
    setmaxnreg_dec<24>();
    if (tid == 0) {
      uint32_t it = 0;  // buffer uses so far: buffer it % STAGES, round it / STAGES
      for (int64_t i = 0; i < walk.n; ++i) {
        const WgmmaTilePos q = wgmma_walk_pos<BN>(p, walk, i, gx, gy);
        for (int kb = q.kb_begin; kb < q.kb_end; ++kb, ++it) {
          const uint32_t buf = it % STAGES;
          mbar_wait(empty0 + 8 * buf, ((it / STAGES) & 1) ^ 1);  // round 0 passes at once
          mbar_expect_tx(full0 + 8 * buf, Tile::kStageBytes);
          tma_load_2d(xs + buf * Tile::kXBytes, &xmap, full0 + 8 * buf, kb * 64, q.tok0);
          if constexpr (LOWRANK) tma_load_2d(ats + buf * Tile::kATBytes, &atmap, full0 + 8 * buf, 0, kb * 64);
        }
      }
    }
    return;
  }
  setmaxnreg_inc<240>();

  const int ctid = tid - 128, lane = ctid & 31, warp = ctid >> 5;
  const uint32_t lane8 = uint32_t(lane) * 8;  // the compact pair table's lane offset
  const int g = lane >> 2, t4 = lane & 3;
  const bool scale_per_block = !LOWRANK && p.G % 64 == 0;
  const int kb_per_scale = p.G / 64;
  const T* scales = static_cast<const T*>(p.scales);

  uint32_t it = 0;  // the producer's count, kept in step
  for (int64_t i = 0; i < walk.n; ++i) {
    const WgmmaTilePos q = wgmma_walk_pos<BN>(p, walk, i, gx, gy);
    const int kb_begin = q.kb_begin, kb_end = q.kb_end, tok0 = q.tok0;
    const uint32_t it0 = it - uint32_t(kb_begin);  // buffer use of block kb: it0 + kb
    it += uint32_t(kb_end - kb_begin);
    const int64_t rt_index = p.row_begin / 16 + q.rb * (4 * Tile::kConsumers) + warp;
    const bool valid = rt_index * 16 < p.row_end;
    const int64_t row0 = rt_index * 16;

    uint32_t bf[1][RC][4];
    if constexpr (LOWRANK) load_b_tiles<T, 1, RC>(bf, static_cast<const T*>(p.B), rt_index, valid ? 1 : 0, p.rp, lane);

    auto stage_ready = [&](int kb) {
      const uint32_t u = it0 + uint32_t(kb);
      mbar_wait(full0 + 8 * (u % STAGES), (u / STAGES) & 1);
    };
    // Every consumer warp's MMAs of block kb are done: its buffer may be refilled.
    auto release = [&](int kb) {
      __syncwarp();
      if (lane == 0) mbar_arrive(empty0 + 8 * ((it0 + uint32_t(kb)) % STAGES));
    };
    // S of block kb (64 rows x 64 k): RC (= rp / 16, exact) k16 steps over the rank, the first
    // overwriting.
    ScaleAcc<T> sacc;
    auto issue_scale = [&](int kb) {
      if constexpr (LOWRANK) {
        const uint64_t desc = smem_desc_kmajor<Tile::kATRowBytes>(ats + ((it0 + uint32_t(kb)) % STAGES) * Tile::kATBytes);
#pragma unroll
        for (int c = 0; c < RC; ++c) sacc.mma(bf[0][c], desc + 2 * c, c > 0);
      }
    };

    const uint8_t* codes = p.codes + rt_index * p.code_rt_stride;
    // Block scales, one per row and k block: rows g and g + 8 of this tile, k blocks per scale.
    const uint16_t* srow0 = reinterpret_cast<const uint16_t*>(scales) + (row0 + g) * p.nblocks;
    const uint16_t* srow8 = srow0 + 8 * p.nblocks;
    auto load_codes = [&](KBlockCodes& c, int kb) {
      if (valid && kb < kb_end) {
        load_group<BITS>(c.c, codes + int64_t(kb) * p.code_group_stride, lane);
        if (scale_per_block) {
          const int blk = kb / kb_per_scale;
          c.s = uint32_t(srow0[blk]) | (uint32_t(srow8[blk]) << 16);
        }
      } else {
        c.c = GroupCodes{{0, 0, 0, 0}};
        c.s = 0;
      }
    };

    float acc[MMA::kAcc];
#pragma unroll
    for (int i = 0; i < MMA::kAcc; ++i) acc[i] = 0.f;

    KBlockCodes cw[PF];
#pragma unroll
    for (int i = 0; i < PF; ++i) load_codes(cw[i], kb_begin + i);
    if constexpr (LOWRANK) {
      stage_ready(kb_begin);
      wgmma_fence();
      issue_scale(kb_begin);
      wgmma_commit();
      wgmma_wait<0>();
      sacc.settle();
    }

    uint32_t wreg[2][4][4];  // [parity][k16 step][register]

    // One k block; PAR = its parity selects the W_hat register buffer (static, so the registers an
    // in-flight MMA reads are never the ones being rebuilt).
    auto kblock = [&](int kb, auto PAR_) {
      constexpr int PAR = decltype(PAR_)::value;
      const KBlockCodes c = cw[PAR];
      load_codes(cw[PAR], kb + PF);
      auto step = [&](auto S_) {
        constexpr int S = decltype(S_)::value;
        uint32_t lev[4], w[4];
        lev[0] = lds_u32(ptab + pair_offset<BITS, S, 0, Tile::kPairStride>(c.c, lane8));
        lev[1] = lds_u32(ptab + pair_offset<BITS, S, 1, Tile::kPairStride>(c.c, lane8));
        lev[2] = lds_u32(ptab + pair_offset<BITS, S, 2, Tile::kPairStride>(c.c, lane8));
        lev[3] = lds_u32(ptab + pair_offset<BITS, S, 3, Tile::kPairStride>(c.c, lane8));
        if constexpr (LOWRANK) {
          // pair 4S + r: (row g, k 16S+2t..) (row g+8, ..) (row g, k 16S+8+2t..) (row g+8, ..)
          using T2 = typename Act<T>::T2;
#pragma unroll
          for (int r = 0; r < 4; ++r) w[r] = as_u32(__hmul2(from_u32<T2>(lev[r]), from_u32<T2>(sacc.pair(4 * S + r))));
        } else if (scale_per_block) {
          const uint16_t s0 = uint16_t(c.s), s8 = uint16_t(c.s >> 16);
          block_w_frag_pair<T>(w, lev, *reinterpret_cast<const T*>(&s0), *reinterpret_cast<const T*>(&s8));
        } else if (valid) {
          block_w_frag<T>(w, lev, scales, row0, p.nblocks, (int64_t(kb) * 64 + S * 16) / p.G, lane);
        } else {
          w[0] = w[1] = w[2] = w[3] = 0;
        }
#pragma unroll
        for (int r = 0; r < 4; ++r) wreg[PAR][S][r] = w[r];
      };
      step(std::integral_constant<int, 0>{});
      step(std::integral_constant<int, 1>{});
      step(std::integral_constant<int, 2>{});
      step(std::integral_constant<int, 3>{});
      // The next block's scale tile goes first: its wait below then leaves only this block's MMA in
      // flight. After the last block it is computed from a buffer not waited for and never used (no
      // branch between the MMAs: ptxas would fence them).
      if (LOWRANK && kb + 1 < kb_end) stage_ready(kb + 1);
      stage_ready(kb);
      wgmma_fence_operands(acc);
      wgmma_fence();
      if constexpr (LOWRANK) {
        issue_scale(kb + 1);
        wgmma_commit();
      }
      const uint64_t desc = smem_desc_kmajor<128>(xs + ((it0 + uint32_t(kb)) % STAGES) * Tile::kXBytes);
#pragma unroll
      for (int S = 0; S < 4; ++S) MMA::mma(acc, wreg[PAR][S], desc + 2 * S, 1);
      wgmma_commit();
      wgmma_wait<1>();
      wgmma_fence_operands(acc);
      if constexpr (LOWRANK) sacc.settle();
      if (kb > kb_begin) release(kb - 1);
    };

    int kb = kb_begin;
    for (; kb + 1 < kb_end; kb += 2) {
      kblock(kb, std::integral_constant<int, 0>{});
      kblock(kb + 1, std::integral_constant<int, 1>{});
    }
    if (kb < kb_end) kblock(kb, std::integral_constant<int, 0>{});
    wgmma_wait<0>();
    wgmma_fence_operands(acc);
    release(kb_end - 1);

    // acc[4j + i]: row g + 8 (i / 2) of this warp's tile, token 8j + 2t + i % 2.
    const bool add = q.y == WgmmaY::Atomic || q.y == WgmmaY::WaitAdd;
    if (q.y == WgmmaY::WaitAdd) {  // the other part of this tile must be in Y first
      if (ctid == 0) flag_wait_lower(p.sk_flags + q.flag);
      named_barrier_sync(Tile::kConsumers * 128);
    }
    if (q.y != WgmmaY::Atomic && p.N % 2 == 0 && (reinterpret_cast<uintptr_t>(p.Y) & 7) == 0) {
      // Lanes g and g ^ 1 swap halves, so that each holds two adjacent rows of a token (the even lane
      // rows g, g + 1, the odd one rows g + 7, g + 8) and stores them as one 8-byte word: a warp's
      // store covers 64 contiguous bytes per token instead of 32, half the memory transactions.
      const bool odd = g & 1;
      const int64_t r = row0 + (odd ? g + 7 : g);  // even: N even and r even, so r + 1 < N when r < N
      auto put = [&](int64_t m, float2 v) {
        float* y = p.Y + m * p.N + r;
        if (add) red_add_f32x2(y, v.x, v.y);
        else *reinterpret_cast<float2*>(y) = v;
      };
#pragma unroll
      for (int j = 0; j < BN / 8; ++j) {
        const float s0 = odd ? acc[4 * j] : acc[4 * j + 2], s1 = odd ? acc[4 * j + 1] : acc[4 * j + 3];
        const float r0 = __shfl_xor_sync(0xffffffffu, s0, 4), r1 = __shfl_xor_sync(0xffffffffu, s1, 4);
        const float2 v0 = odd ? make_float2(r0, acc[4 * j + 2]) : make_float2(acc[4 * j], r0);
        const float2 v1 = odd ? make_float2(r1, acc[4 * j + 3]) : make_float2(acc[4 * j + 1], r1);
        const int64_t m = tok0 + 8 * j + 2 * t4;
        if (r < p.N && m < p.M) put(m, v0);
        if (r < p.N && m + 1 < p.M) put(m + 1, v1);
      }
    } else {
#pragma unroll
      for (int j = 0; j < BN / 8; ++j)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int64_t r = row0 + g + (i >> 1) * 8, m = tok0 + 8 * j + 2 * t4 + (i & 1);
          if (r < p.N && m < p.M) {
            float* y = p.Y + m * p.N + r;
            if (add) atomicAdd(y, acc[4 * j + i]);
            else *y = acc[4 * j + i];
          }
        }
    }
    if (q.y == WgmmaY::StoreSignal) {  // every consumer's stores fenced, then the flag
      __threadfence();
      named_barrier_sync(Tile::kConsumers * 128);
      if (ctid == 0) flag_raise(p.sk_flags + q.flag);
    }
  }
}

}  // namespace lords::cuda::qmm
