// The LoRDS decode kernel on Hopper (sm_90a; M <= 16 tokens). Same stream as qmm_decode.cuh (K slice
// of X and A^T loaded once, codes in a register ring, code-pair level table), but the scale tile, the
// r multiply-adds per weight that make LoRDS costlier than block scales, runs on warpgroup MMA: one
// wgmma m64n64k16 per 16 ranks gives S for 64 rows x 64 k, twice the tensor throughput of mma.sync
// and asynchronous, so the level lookups of the same group run while it computes.
//
// Block: WG warpgroups; warpgroup w covers RT tiles of 64 rows, warp q of it rows 16q..16q+15 of each
// (the wgmma A operand, B's rows, is that warp's mma.sync A fragment). Per 64-k group: S (64 x 64) per
// tile by wgmma, then per k16 step W_hat = levels ⊙ S in registers and one mma.sync with X.
#pragma once

#include <type_traits>

#include "lords/cuda/qmm/qmm_decode.cuh"
#include "lords/cuda/qmm/wgmma.cuh"

namespace lords::cuda::qmm {

template <class T, int BITS, int RT, int NT, int WG>
struct DecodeWgmmaTile {
  static constexpr int kThreads = WG * 128;
  static constexpr int kRows = 64 * RT * WG;
  static constexpr int kTokens = 8 * NT;
  static constexpr int kPipe = 2;  // groups of codes in registers
  static size_t smem_bytes(int groups_per_split, int rp) {
    const size_t kc = size_t(groups_per_split) * 64;
    return size_t(PairTable<BITS>::kWords) * 4 + size_t(kTokens) * (kc + 8) * sizeof(T) + kc * size_t(rp) * sizeof(T);
  }
};

template <class T, int BITS, int RC, int RT, int NT, int WG>
__global__ void __launch_bounds__(WG * 128, 2) qmm_decode_wgmma_kernel(const QmmParams p) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Tile = DecodeWgmmaTile<T, BITS, RT, NT, WG>;
  using A = Act<T>;
  using T2 = typename A::T2;
  constexpr bool kF16 = std::is_same_v<T, __half>;
  constexpr int PF = Tile::kPipe;
  constexpr int kAccRegs = kF16 ? 16 : 32;
  extern __shared__ uint4 smem_raw[];
  uint32_t* lut = reinterpret_cast<uint32_t*>(smem_raw);
  const int kc = p.groups_per_split * 64;
  const int xstride = kc + 8;
  T* xs = reinterpret_cast<T*>(lut + PairTable<BITS>::kWords);
  T* ats = xs + Tile::kTokens * xstride;  // core-matrix order (wgmma.cuh); 16-byte aligned
  const int rp = RC * 16;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wg = warp >> 2, wq = warp & 3;
  const int g = lane >> 2, t = lane & 3;
  const T* X = static_cast<const T*>(p.X);
  const int64_t groups_total = p.Kp / 64;
  const int64_t g_begin = int64_t(blockIdx.y) * p.groups_per_split;
  const int ng = int(min(int64_t(p.groups_per_split), groups_total - g_begin));
  const int64_t kbase = g_begin * 64;
  const int64_t tok0 = int64_t(blockIdx.z) * Tile::kTokens;

  // Row tile (16 rows) of this warp in 64-row tile rt: every warp of the warpgroup must join each
  // wgmma, so tiles past the rows run on zero codes and zero factors and store nothing.
  const int64_t tiles_end = (p.row_end + 15) / 16;
  auto tile_of = [&](int rt) { return p.row_begin / 16 + (int64_t(blockIdx.x) * WG + wg) * RT * 4 + rt * 4 + wq; };

  auto load_group_all = [&](GroupCodes (&c)[RT], int gi) {
#pragma unroll
    for (int rt = 0; rt < RT; ++rt) {
      const int64_t tile = tile_of(rt);
      if (tile < tiles_end) load_group<BITS>(c[rt], p.codes + (tile * groups_total + g_begin + gi) * BITS * 128, lane);
      else c[rt] = GroupCodes{{0, 0, 0, 0}};
    }
  };
  GroupCodes cw[PF][RT];
#pragma unroll
  for (int s = 0; s < PF; ++s) {
    if (s < ng) load_group_all(cw[s], s);
    else
#pragma unroll
      for (int rt = 0; rt < RT; ++rt) cw[s][rt] = GroupCodes{{0, 0, 0, 0}};
  }

  // X slice (tokens x kc) and the A^T slice in core-matrix order.
  {
    const int chunks = kc / 8;
    for (int i = tid; i < Tile::kTokens * chunks; i += Tile::kThreads) {
      const int tok = i / chunks, c8 = (i % chunks) * 8;
      const int64_t gt = tok0 + tok, gk = kbase + c8;
      T* dst = xs + tok * xstride + c8;
      if (p.x_vec && gt < p.M && gk + 8 <= p.K) {
        cp_async16(dst, X + gt * p.K + gk);
      } else {
#pragma unroll
        for (int j = 0; j < 8; ++j) dst[j] = (gt < p.M && gk + j < p.K) ? X[gt * p.K + gk + j] : A::from_float(0.f);
      }
    }
    const T* AT = static_cast<const T*>(p.AT);
    for (int i = tid; i < ng * 64 * RC * 2; i += Tile::kThreads) {
      const int kr = i / (RC * 2), j8 = i % (RC * 2);
      cp_async16(ats + ((kr / 8) * (RC * 2) + j8) * 64 + (kr % 8) * 8, AT + (kbase + kr) * p.rp + j8 * 8);
    }
    cp_async_commit();
  }
  for (int i = tid; i < PairTable<BITS>::kWords; i += Tile::kThreads) {
    int ca, cb;
    pair_codes<BITS>(i >> 5, ca, cb);
    lut[i] = as_u32(A::pack(p.levels[ca], p.levels[cb]));
  }
  uint32_t bf[RT][RC][4];
#pragma unroll
  for (int rt = 0; rt < RT; ++rt) {
    const int64_t tile = tile_of(rt);
    if (tile < tiles_end) {
      load_b_frags<T, RC>(bf[rt], static_cast<const T*>(p.B), tile * 16, p.rp, lane);
    } else {
#pragma unroll
      for (int c = 0; c < RC; ++c) bf[rt][c][0] = bf[rt][c][1] = bf[rt][c][2] = bf[rt][c][3] = 0;
    }
  }
  float acc[RT][NT][4];
#pragma unroll
  for (int rt = 0; rt < RT; ++rt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) acc[rt][nt][0] = acc[rt][nt][1] = acc[rt][nt][2] = acc[rt][nt][3] = 0.f;

  cp_async_wait<0>();
  fence_proxy_async_smem();  // the A^T slice is read by wgmma (async proxy)
  __syncthreads();

  const uint32_t lut_lane = smem_addr(lut + lane);
  const uint32_t at_base = smem_addr(ats);
  const uint32_t x_lane =
      smem_addr(xs + ((lane & 7) + (NT > 1 ? (lane >> 4) * 8 : 0)) * xstride + ((lane >> 3) & 1) * 8);
  constexpr uint32_t kCoreBytes = 128;
  constexpr uint32_t kStrideBytes = RC * 2 * kCoreBytes;  // next 8 k columns

  using AccT = std::conditional_t<kF16, uint32_t, float>;
  AccT sacc[RT][kAccRegs];

  auto compute_group = [&](const GroupCodes (&c)[RT], int gi) {
    // 1. S tiles on the tensor cores (asynchronous).
    const uint32_t at_group = at_base + uint32_t(gi) * 8 * kStrideBytes;
#pragma unroll
    for (int rt = 0; rt < RT; ++rt)
#pragma unroll
      for (int i = 0; i < kAccRegs; ++i) reg_fence(sacc[rt][i]);
    wgmma_fence();
#pragma unroll
    for (int rt = 0; rt < RT; ++rt) {
#pragma unroll
      for (int ch = 0; ch < RC; ++ch) {
        const uint64_t desc = wgmma_desc(at_group + ch * 2 * kCoreBytes, kCoreBytes, kStrideBytes);
        if constexpr (kF16) wgmma_m64n64k16_f16(sacc[rt], bf[rt][ch], desc, ch > 0);
        else wgmma_m64n64k16_f32_bf16(sacc[rt], bf[rt][ch], desc, ch > 0);
      }
    }
    wgmma_commit();
    // 2. Meanwhile: the levels of the whole group.
    uint32_t lev[RT][4][4];
    auto lookup = [&](auto S_) {
      constexpr int S = decltype(S_)::value;
#pragma unroll
      for (int rt = 0; rt < RT; ++rt) {
        lev[rt][S][0] = lds_u32(lut_lane + (pair_index<BITS, S, 0>(c[rt]) << 7));
        lev[rt][S][1] = lds_u32(lut_lane + (pair_index<BITS, S, 1>(c[rt]) << 7));
        lev[rt][S][2] = lds_u32(lut_lane + (pair_index<BITS, S, 2>(c[rt]) << 7));
        lev[rt][S][3] = lds_u32(lut_lane + (pair_index<BITS, S, 3>(c[rt]) << 7));
      }
    };
    lookup(std::integral_constant<int, 0>{});
    lookup(std::integral_constant<int, 1>{});
    lookup(std::integral_constant<int, 2>{});
    lookup(std::integral_constant<int, 3>{});
    wgmma_wait<0>();
#pragma unroll
    for (int rt = 0; rt < RT; ++rt)
#pragma unroll
      for (int i = 0; i < kAccRegs; ++i) reg_fence(sacc[rt][i]);
    // 3. Per k16 step: W_hat fragment = levels ⊙ S (n8 tiles 2S and 2S+1 of the accumulators), times X.
    const uint32_t x_group = x_lane + uint32_t(gi) * 64 * sizeof(T);
    auto step = [&](auto S_) {
      constexpr int S = decltype(S_)::value;
      uint32_t w[RT][4];
#pragma unroll
      for (int rt = 0; rt < RT; ++rt) {
        if constexpr (kF16) {
          w[rt][0] = as_u32(__hmul2(from_u32<T2>(lev[rt][S][0]), from_u32<T2>(sacc[rt][4 * S + 0])));
          w[rt][1] = as_u32(__hmul2(from_u32<T2>(lev[rt][S][1]), from_u32<T2>(sacc[rt][4 * S + 1])));
          w[rt][2] = as_u32(__hmul2(from_u32<T2>(lev[rt][S][2]), from_u32<T2>(sacc[rt][4 * S + 2])));
          w[rt][3] = as_u32(__hmul2(from_u32<T2>(lev[rt][S][3]), from_u32<T2>(sacc[rt][4 * S + 3])));
        } else {
          const float* s = &sacc[rt][8 * S];
          w[rt][0] = as_u32(__hmul2(from_u32<T2>(lev[rt][S][0]), A::pack(s[0], s[1])));
          w[rt][1] = as_u32(__hmul2(from_u32<T2>(lev[rt][S][1]), A::pack(s[2], s[3])));
          w[rt][2] = as_u32(__hmul2(from_u32<T2>(lev[rt][S][2]), A::pack(s[4], s[5])));
          w[rt][3] = as_u32(__hmul2(from_u32<T2>(lev[rt][S][3]), A::pack(s[6], s[7])));
        }
      }
      if constexpr (NT == 1) {
        uint32_t xf[2];
        ldsm_x2(xf, x_group + S * 16 * sizeof(T));
#pragma unroll
        for (int rt = 0; rt < RT; ++rt) A::mma(acc[rt][0], w[rt], xf[0], xf[1]);
      } else {
        uint32_t xf[4];
        ldsm_x4(xf, x_group + S * 16 * sizeof(T));
#pragma unroll
        for (int rt = 0; rt < RT; ++rt) {
          A::mma(acc[rt][0], w[rt], xf[0], xf[1]);
          A::mma(acc[rt][1], w[rt], xf[2], xf[3]);
        }
      }
    };
    step(std::integral_constant<int, 0>{});
    step(std::integral_constant<int, 1>{});
    step(std::integral_constant<int, 2>{});
    step(std::integral_constant<int, 3>{});
  };

  for (int g0 = 0; g0 < ng; g0 += PF) {
#pragma unroll
    for (int s = 0; s < PF; ++s) {
      const int gi = g0 + s;
      if (gi < ng) {
        compute_group(cw[s], gi);
        if (gi + PF < ng) load_group_all(cw[s], gi + PF);
      }
    }
  }

  const bool atomic = gridDim.y > 1;
#pragma unroll
  for (int rt = 0; rt < RT; ++rt) {
    const int64_t tile = tile_of(rt);
    if (tile >= tiles_end) continue;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const int64_t row = tile * 16 + g;
      const int64_t tok = tok0 + nt * 8 + 2 * t;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int64_t r = row + (i >> 1) * 8, m = tok + (i & 1);
        if (r < p.N && m < p.M) {
          float* y = p.Y + m * p.N + r;
          if (atomic) atomicAdd(y, acc[rt][nt][i]);
          else *y = acc[rt][nt][i];
        }
      }
    }
  }
#else
  __trap();  // launched only where the build has sm_90a code (qmm_fused_launch.cuh)
#endif
}

}  // namespace lords::cuda::qmm
