// The Hopper prefill qmatmul kernel (17 <= M tokens, sm_90a): Y^T = W_hat · X^T on warpgroup MMA,
// with W_hat rebuilt in registers and never written anywhere.
//
// Why this shape: wgmma takes its 64 x 16 A operand from registers in exactly the mma.sync
// fragment order the codes are stored in (fragment_layout.h), so each warp rebuilds its 16 rows of
// W_hat for a k16 step the way the decode kernels do (levels from the code table times the scale
// tile, the low-rank tile S = B_tile · A_tile itself on mma.sync) and hands the registers to wgmma
// while the X tile (the B operand, K-major, 128-byte swizzled) sits in shared memory. The scale
// work is paid once per weight and token block of BN tokens, so BN is as large as registers allow.
//
// Block: WGS warpgroups, each 64 rows (warp w: row tile w), all over the same BN tokens. K is
// walked in 64-k blocks through a STAGES-deep cp.async ring holding the X tile and, for low-rank
// scales, the A^T tile; the load of block i + STAGES - 2 goes into the buffer block i - 2 used, which
// every warp has finished with when it passes block i's barrier (it waited for its MMAs of i - 2
// at the end of block i - 1). One barrier per k block. The W_hat registers are double-buffered:
// block i's are built while block i - 1's MMAs run. Codes come PF blocks ahead into registers.
// Grid: x = token blocks (fastest, so blocks sharing a row block's codes run together), y = row blocks.
#pragma once

#include <type_traits>

#include "lords/cuda/qmm/qmm_device.cuh"
#include "lords/cuda/qmm/wgmma.cuh"

namespace lords::cuda::qmm {

template <class T, int BN, int WGS, int STAGES>
struct WgmmaTile {
  static constexpr int kThreads = WGS * 128;
  static constexpr int kRows = WGS * 64;
  static constexpr int kXBytes = BN * 128;  // BN tokens x 64 k, 128-byte swizzled rows
  static constexpr int kLutBytes = 1024;    // level table, then padding to keep X tiles 1024-aligned
  __host__ __device__ static int at_stride(int rp) { return rp + 8; }  // +16 B per row: conflict-free ldmatrix
  __host__ __device__ static size_t at_bytes(int rp) { return size_t(64) * at_stride(rp) * sizeof(T); }
  static size_t smem_bytes(int rp) { return 1024 + kLutBytes + STAGES * (size_t(kXBytes) + at_bytes(rp)); }
};

// Rows tok0 .. tok0+BN-1 of X, k in [k0, k0 + 64), into a 128-byte-swizzled tile (zero beyond M, K).
template <class T, int BN>
__device__ __forceinline__ void load_x_sw128(T* dst, const T* X, int64_t M, int64_t K, bool x_vec, int64_t tok0,
                                             int64_t k0, int tid, int threads) {
  for (int i = tid; i < BN * 8; i += threads) {
    const int row = i >> 3, c = i & 7;
    const int64_t gt = tok0 + row, gk = k0 + c * 8;
    T* d = dst + row * 64 + ((c ^ (row & 7)) * 8);
    if (x_vec) {
      const bool in = gt < M && gk + 8 <= K;
      const T* src = in ? X + gt * K + gk : X;
      asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(d)), "l"(src), "r"(in ? 16 : 0));
    } else {
#pragma unroll
      for (int j = 0; j < 8; ++j) d[j] = (gt < M && gk + j < K) ? X[gt * K + gk + j] : Act<T>::from_float(0.f);
    }
  }
}

template <class T, int BITS, bool LOWRANK, int RC, int BN, int WGS, int STAGES>
__global__ void __launch_bounds__(WGS * 128, 1) qmm_wgmma_kernel(const QmmParams p) {
  using Tile = WgmmaTile<T, BN, WGS, STAGES>;
  using A = Act<T>;
  using MMA = Wgmma<T, BN>;
  constexpr int PF = 2;  // code blocks in flight ahead of the one being used
  extern __shared__ uint4 smem_raw[];  // (the other qmm kernels declare it so too)
  // The swizzle is a function of the address bits, so the X tiles must start 1024-aligned.
  uint8_t* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  uint32_t* lut = reinterpret_cast<uint32_t*>(base);
  T* xs = reinterpret_cast<T*>(base + Tile::kLutBytes);
  T* ats = reinterpret_cast<T*>(base + Tile::kLutBytes + STAGES * Tile::kXBytes);
  const int at_stride = Tile::at_stride(p.rp);
  const int at_elems = int(Tile::at_bytes(p.rp) / sizeof(T));

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const T* X = static_cast<const T*>(p.X);
  const T* AT = static_cast<const T*>(p.AT);
  build_lut<T>(lut, p.levels, tid, 1 << BITS);

  const int64_t tok0 = int64_t(blockIdx.x) * BN;
  const int blocks = int(p.Kp / 64);
  const int64_t rt_index = p.row_begin / 16 + int64_t(blockIdx.y) * (4 * WGS) + warp;
  const bool valid = rt_index * 16 < p.row_end;

  uint32_t bf[1][RC][4];
  if constexpr (LOWRANK) load_b_tiles<T, 1, RC>(bf, static_cast<const T*>(p.B), rt_index, valid ? 1 : 0, p.rp, lane);

  auto load_stage = [&](int kb) {
    if (kb < blocks) {
      const int buf = kb % STAGES;
      load_x_sw128<T, BN>(xs + buf * (Tile::kXBytes / sizeof(T)), X, p.M, p.K, p.x_vec, tok0, int64_t(kb) * 64, tid,
                          Tile::kThreads);
      if constexpr (LOWRANK) {
        T* adst = ats + buf * at_elems;
        const int chunks_per_row = p.rp / 8;
        for (int i = tid; i < 64 * chunks_per_row; i += Tile::kThreads) {
          const int kr = i / chunks_per_row, c8 = (i % chunks_per_row) * 8;
          cp_async16(adst + kr * at_stride + c8, AT + (int64_t(kb) * 64 + kr) * p.rp + c8);
        }
      }
    }
    cp_async_commit();  // empty groups keep the wait count uniform
  };

  const uint8_t* codes = p.codes + rt_index * p.code_rt_stride;
  auto load_codes = [&](GroupCodes& c, int kb) {
    if (valid && kb < blocks) load_group<BITS>(c, codes + int64_t(kb) * p.code_group_stride, lane);
    else c = GroupCodes{{0, 0, 0, 0}};
  };

  float acc[MMA::kAcc];
#pragma unroll
  for (int i = 0; i < MMA::kAcc; ++i) acc[i] = 0.f;

  GroupCodes cw[PF];
#pragma unroll
  for (int i = 0; i < PF; ++i) load_codes(cw[i], i);
#pragma unroll
  for (int s = 0; s < STAGES - 2; ++s) load_stage(s);

  uint32_t wreg[2][4][4];  // [parity][k16 step][register]
  const int64_t row0 = rt_index * 16;

  // One k block; PAR = kb % 2 selects the W_hat register buffer (static, so the registers an
  // in-flight MMA reads are never the ones being rebuilt).
  auto kblock = [&](int kb, auto PAR_) {
    constexpr int PAR = decltype(PAR_)::value;
    cp_async_wait<STAGES - 3>();
    fence_proxy_async_smem();
    __syncthreads();
    load_stage(kb + STAGES - 2);
    const int buf = kb % STAGES;
    const GroupCodes c = cw[PAR];
    load_codes(cw[PAR], kb + PF);
    auto step = [&](auto S_) {
      constexpr int S = decltype(S_)::value;
      uint32_t lev[1][4], w[1][4];
      level_pairs<BITS, S>(lev[0], c, lut, lane);
      if constexpr (LOWRANK) {
        lowrank_w_frags<T, 1, RC>(w, lev, bf, ats + buf * at_elems + S * 16 * at_stride, at_stride, p.rp, lane);
      } else {
        if (valid) block_w_frag<T>(w[0], lev[0], static_cast<const T*>(p.scales), row0, p.nblocks,
                                   (int64_t(kb) * 64 + S * 16) / p.G, lane);
        else w[0][0] = w[0][1] = w[0][2] = w[0][3] = 0;
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) wreg[PAR][S][i] = w[0][i];
    };
    step(std::integral_constant<int, 0>{});
    step(std::integral_constant<int, 1>{});
    step(std::integral_constant<int, 2>{});
    step(std::integral_constant<int, 3>{});
#pragma unroll
    for (int i = 0; i < MMA::kAcc; ++i) wgmma_fence_operand(acc[i]);
    wgmma_fence();
    const uint64_t desc = smem_desc_sw128(smem_addr(xs + buf * (Tile::kXBytes / sizeof(T))));
#pragma unroll
    for (int S = 0; S < 4; ++S) MMA::mma(acc, wreg[PAR][S], desc + 2 * S, 1);
    wgmma_commit();
    wgmma_wait<1>();
#pragma unroll
    for (int i = 0; i < MMA::kAcc; ++i) wgmma_fence_operand(acc[i]);
  };

  int kb = 0;
  for (; kb + 1 < blocks; kb += 2) {
    kblock(kb, std::integral_constant<int, 0>{});
    kblock(kb + 1, std::integral_constant<int, 1>{});
  }
  if (kb < blocks) kblock(kb, std::integral_constant<int, 0>{});
  wgmma_wait<0>();
#pragma unroll
  for (int i = 0; i < MMA::kAcc; ++i) wgmma_fence_operand(acc[i]);

  // acc[4j + i]: row g + 8 (i / 2) of this warp's tile, token 8j + 2t + i % 2.
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int j = 0; j < BN / 8; ++j)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t r = row0 + g + (i >> 1) * 8, m = tok0 + 8 * j + 2 * t + (i & 1);
      if (r < p.N && m < p.M) p.Y[m * p.N + r] = acc[4 * j + i];
    }
}

}  // namespace lords::cuda::qmm
