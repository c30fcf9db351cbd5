// The Hopper prefill qmatmul kernel (17 <= M tokens, sm_90a): Y^T = W_hat · X^T on warpgroup MMA,
// with W_hat rebuilt in registers and never written anywhere.
//
// Why this shape: wgmma takes its 64 x 16 A operand from registers in exactly the mma.sync
// fragment order the codes are stored in (fragment_layout.h), so each warp rebuilds its 16 rows of
// W_hat for a k16 step the way the decode kernels do (levels from the code table times the scale
// tile) and hands the registers to wgmma while the X tile (the B operand, K-major, 128-byte
// swizzled, brought by TMA) sits in shared memory. The low-rank scale tile of a k block,
// S (64 x 64) = B_tile (64 x rp) · A_tile (rp x 64), is itself a wgmma (B_tile's fragments in
// registers, the A^T tile by TMA), issued one k block ahead, before the main MMA of the current
// block, so that its result is in registers when the next block's W_hat is built. (mma.sync for S,
// as the decode kernels do, queues behind the asynchronous MMAs in flight and serializes the two.)
// The scale work is paid once per weight and token block of BN tokens, so BN is as large as
// registers allow.
//
// Block: WGS warpgroups, each 64 rows (warp w: row tile w), all over the same BN tokens. K is
// walked in 64-k blocks through a STAGES-deep ring of X tiles and, for low-rank scales, A^T tiles
// (64 k x 64 ranks, zero beyond the rank), both by TMA with one mbarrier per buffer. The
// loads of block i + STAGES - 2 go into the buffer block i - 2 used, which every warp has finished
// with when it passes block i's barrier (it waited for its MMAs of i - 2 at the end of block
// i - 1): one barrier per k block. The W_hat registers are double-buffered: block i's are built
// while block i - 1's MMAs run. Codes (and block scales) come PF blocks ahead into registers.
// Grid: x = token blocks (fastest, so blocks sharing a row block's codes run together), y = row
// blocks, z = K slices where rows x tokens alone would leave SMs idle (partial sums meet in Y by
// atomics). Needs X rows 16-byte aligned with K % 8 == 0 (TMA); the launcher checks.
#pragma once

#include <cuda.h>

#include <type_traits>

#include "lords/cuda/qmm/qmm_device.cuh"
#include "lords/cuda/qmm/wgmma.cuh"

namespace lords::cuda::qmm {

template <class T, int BN, int WGS, int STAGES>
struct WgmmaTile {
  static constexpr int kThreads = WGS * 128;
  static constexpr int kRows = WGS * 64;
  static constexpr int kXBytes = BN * 128;  // BN tokens x 64 k, 128-byte swizzled rows
  static constexpr int kATBytes = 64 * 128;  // 64 k x 64 ranks, 128-byte swizzled rows
  static constexpr size_t smem_bytes(bool lowrank) {  // + 1024: the tiles are aligned up to 1024
    return 1024 + STAGES * (size_t(kXBytes) + (lowrank ? kATBytes : 0));
  }
  static constexpr uint32_t stage_tx(bool lowrank) { return kXBytes + (lowrank ? kATBytes : 0); }
};

// One k block's codes of a warp's row tile and, for block scales with G % 64 == 0, the scales of
// rows g and g + 8 (two 16-bit halves).
struct KBlockCodes {
  GroupCodes c;
  uint32_t s;
};

template <class T, int BITS, bool LOWRANK, int RC, int BN, int WGS, int STAGES>
__global__ void __launch_bounds__(WGS * 128, 1) qmm_wgmma_kernel(const QmmParams p, const __grid_constant__ CUtensorMap xmap,
                                                              const __grid_constant__ CUtensorMap atmap) {
  using Tile = WgmmaTile<T, BN, WGS, STAGES>;
  using MMA = Wgmma<T, BN>;
  using SMMA = Wgmma<T, 64>;
  constexpr int PF = 2;  // code blocks in flight ahead of the one being used
  extern __shared__ uint4 smem_raw[];  // (the other qmm kernels declare it so too)
  // Static, so that the compiler knows the table lookups are shared-memory loads.
  __shared__ uint32_t lut[kLutWords];
  __shared__ alignas(8) uint64_t mbar[STAGES];
  const uint32_t mbar0 = smem_addr(mbar);
  // The swizzle is a function of the address bits, so the tiles must start 1024-aligned.
  const uint32_t xs = (smem_addr(smem_raw) + 1023) & ~1023u;
  const uint32_t ats = xs + STAGES * Tile::kXBytes;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  build_lut<T>(lut, p.levels, tid, 1 << BITS);
  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) mbar_init(mbar0 + 8 * s, 1);
    mbar_init_fence();
  }
  __syncthreads();

  const int tok0 = int(blockIdx.x) * BN;
  const int blocks_total = int(p.Kp / 64);
  const int kb_begin = int(blockIdx.z) * p.groups_per_split;
  const int kb_end = min(kb_begin + p.groups_per_split, blocks_total);
  const int64_t rt_index = p.row_begin / 16 + int64_t(blockIdx.y) * (4 * WGS) + warp;
  const bool valid = rt_index * 16 < p.row_end;
  const int64_t row0 = rt_index * 16;
  const int g = lane >> 2, t = lane & 3;
  const bool scale_per_block = !LOWRANK && p.G % 64 == 0;

  uint32_t bf[1][RC][4];
  if constexpr (LOWRANK) load_b_tiles<T, 1, RC>(bf, static_cast<const T*>(p.B), rt_index, valid ? 1 : 0, p.rp, lane);

  auto load_stage = [&](int kb) {
    if (kb < kb_end) {
      const int buf = (kb - kb_begin) % STAGES;
      if (tid == 0) {
        mbar_expect_tx(mbar0 + 8 * buf, Tile::stage_tx(LOWRANK));
        tma_load_2d(xs + buf * Tile::kXBytes, &xmap, mbar0 + 8 * buf, kb * 64, tok0);
        if constexpr (LOWRANK) tma_load_2d(ats + buf * Tile::kATBytes, &atmap, mbar0 + 8 * buf, 0, kb * 64);
      }
    }
  };
  auto stage_ready = [&](int kb) {
    const int i = kb - kb_begin;
    mbar_wait(mbar0 + 8 * (i % STAGES), (i / STAGES) & 1);
  };
  // S of block kb (64 rows x 64 k) into sacc: RC (= rp / 16, exact) k16 steps over the rank, the
  // first overwriting.
  float sacc[LOWRANK ? SMMA::kAcc : 1];
  auto issue_scale = [&](int kb) {
    if constexpr (LOWRANK) {
      const uint64_t desc = smem_desc_sw128(ats + ((kb - kb_begin) % STAGES) * Tile::kATBytes);
#pragma unroll
      for (int c = 0; c < RC; ++c) SMMA::mma(sacc, bf[0][c], desc + 2 * c, c > 0);
    }
  };

  const uint8_t* codes = p.codes + rt_index * p.code_rt_stride;
  const T* scales = static_cast<const T*>(p.scales);
  // Block scales, one per row and k block: rows g and g + 8 of this tile, k blocks per scale.
  const uint16_t* srow0 = reinterpret_cast<const uint16_t*>(scales) + (row0 + g) * p.nblocks;
  const uint16_t* srow8 = srow0 + 8 * p.nblocks;
  const int kb_per_scale = p.G / 64;
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
#pragma unroll
  for (int s = 0; s < STAGES - 2; ++s) load_stage(kb_begin + s);
  if constexpr (LOWRANK) {
    stage_ready(kb_begin);
    wgmma_fence();
    issue_scale(kb_begin);
    wgmma_commit();
    wgmma_wait<0>();
  }

  uint32_t wreg[2][4][4];  // [parity][k16 step][register]

  // One k block; PAR = its parity selects the W_hat register buffer (static, so the registers an
  // in-flight MMA reads are never the ones being rebuilt).
  auto kblock = [&](int kb, auto PAR_) {
    constexpr int PAR = decltype(PAR_)::value;
    const int buf = (kb - kb_begin) % STAGES;
    __syncthreads();
    load_stage(kb + STAGES - 2);
    const KBlockCodes c = cw[PAR];
    load_codes(cw[PAR], kb + PF);
    auto step = [&](auto S_) {
      constexpr int S = decltype(S_)::value;
      uint32_t lev[1][4], w[1][4];
      level_pairs<BITS, S>(lev[0], c.c, lut, lane);
      if constexpr (LOWRANK) {
        // sacc[8S .. 8S+7]: (row g, k 16S+2t..) (row g+8, ..) (row g, k 16S+8+2t..) (row g+8, ..)
        using T2 = typename Act<T>::T2;
#pragma unroll
        for (int r = 0; r < 4; ++r)
          w[0][r] = as_u32(__hmul2(from_u32<T2>(lev[0][r]), Act<T>::pack(sacc[8 * S + 2 * r], sacc[8 * S + 2 * r + 1])));
      } else if (scale_per_block) {
        const uint16_t s0 = uint16_t(c.s), s8 = uint16_t(c.s >> 16);
        block_w_frag_pair<T>(w[0], lev[0], *reinterpret_cast<const T*>(&s0), *reinterpret_cast<const T*>(&s8));
      } else if (valid) {
        block_w_frag<T>(w[0], lev[0], scales, row0, p.nblocks, (int64_t(kb) * 64 + S * 16) / p.G, lane);
      } else {
        w[0][0] = w[0][1] = w[0][2] = w[0][3] = 0;
      }
#pragma unroll
      for (int r = 0; r < 4; ++r) wreg[PAR][S][r] = w[0][r];
    };
    step(std::integral_constant<int, 0>{});
    step(std::integral_constant<int, 1>{});
    step(std::integral_constant<int, 2>{});
    step(std::integral_constant<int, 3>{});
    // The next block's scale tile goes first: its wait below then leaves only this block's MMA in
    // flight. After the last block it is computed from a stale buffer and never used (no branch
    // between the MMAs: ptxas would fence them).
    if (LOWRANK && kb + 1 < kb_end) stage_ready(kb + 1);
    stage_ready(kb);
    wgmma_fence_operands(acc);
    wgmma_fence();
    if constexpr (LOWRANK) {
      issue_scale(kb + 1);
      wgmma_commit();
    }
    const uint64_t desc = smem_desc_sw128(xs + buf * Tile::kXBytes);
#pragma unroll
    for (int S = 0; S < 4; ++S) MMA::mma(acc, wreg[PAR][S], desc + 2 * S, 1);
    wgmma_commit();
    wgmma_wait<1>();
    wgmma_fence_operands(acc);
    if constexpr (LOWRANK) {
      wgmma_fence_operands(sacc);
    }
  };

  int kb = kb_begin;
  for (; kb + 1 < kb_end; kb += 2) {
    kblock(kb, std::integral_constant<int, 0>{});
    kblock(kb + 1, std::integral_constant<int, 1>{});
  }
  if (kb < kb_end) kblock(kb, std::integral_constant<int, 0>{});
  wgmma_wait<0>();
  wgmma_fence_operands(acc);

  // acc[4j + i]: row g + 8 (i / 2) of this warp's tile, token 8j + 2t + i % 2.
#pragma unroll
  for (int j = 0; j < BN / 8; ++j)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t r = row0 + g + (i >> 1) * 8, m = tok0 + 8 * j + 2 * t + (i & 1);
      if (r < p.N && m < p.M) {
        float* y = p.Y + m * p.N + r;
        if (p.atomic) atomicAdd(y, acc[4 * j + i]);
        else *y = acc[4 * j + i];
      }
    }
}

}  // namespace lords::cuda::qmm
