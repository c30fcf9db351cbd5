// The decode qmatmul kernel (M <= 16 tokens): a stream over the packed codes that must keep the
// memory system busy, so everything else is arranged around it.
//
// Why a kernel of its own (the fused kernel's decode configuration reached 32 % of copy bandwidth):
// - No barrier in the main loop. A block loads its whole K slice of X and A^T to shared memory once;
//   after that each warp walks its row tiles' groups alone, with the codes of the next PF groups
//   already requested into registers while it computes the current one (a register pipeline).
// - Half the shared-memory lookups: the level table is indexed by a code *pair* (one byte of a 4-bit
//   fragment word) and returns the fragment register (level[a], level[b]) directly, replicated once
//   per bank so a warp's 32 lookups never conflict, and laid out so that a lookup is one byte
//   permute and one shared load (PairTable).
// - For fp16 the scale tile S = B_tile · A_tile comes out of the tensor cores with fp16 accumulators,
//   already packed as the half2 pairs the level multiply needs (rank <= 64: at most 4 roundings of a
//   scale, the same order as rounding S itself to fp16). bf16 has no bf16 accumulators: fp32 + pack.
// - Block-wise scales (the NF4 baseline) ride in the same pipeline, one per row and group (G % 64
//   == 0), or are read per k16 step otherwise.
//
// Grid: x = blocks of WARPS * RT row tiles, y = K slices of groups_per_split groups (partial sums
// added into Y with atomics when there is more than one), z = tiles of 8 * NT tokens.
#pragma once

#include <type_traits>

#include "lords/cuda/qmm/qmm_device.cuh"
#include "lords/cuda/qmm/qmm_pair_table.cuh"

namespace lords::cuda::qmm {

// DEQUANT: the same stream writes W_hat (rows, K) instead of multiplying it with X (the large-M path
// hands it to cuBLAS); each warp stages a 16 x 64 tile per row tile in shared memory (stmatrix) and
// writes it back as whole 128-byte row segments.
template <class T, int BITS, bool LOWRANK, int RT, int NT, int WARPS, bool DEQUANT = false>
struct DecodeTile {
  static constexpr int kThreads = WARPS * 32;
  static constexpr int kRows = 16 * RT * WARPS;
  static constexpr int kTokens = 8 * NT;
  static constexpr int kPipe = 3;        // groups of codes in registers: one computed, two in flight
  static constexpr int kStageStride = 72;  // elements per staged row: 64 + 8 (conflict-free stmatrix)
  static constexpr int kStageElems = RT * 16 * kStageStride;  // per warp
  static size_t smem_bytes(int groups_per_split, int rp) {
    const size_t kc = size_t(groups_per_split) * 64;
    size_t b = size_t(PairTable<BITS>::kWords) * 4;
    b += DEQUANT ? size_t(WARPS) * kStageElems * sizeof(T) : size_t(kTokens) * (kc + 8) * sizeof(T);
    if (LOWRANK) b += kc * size_t(rp + 8) * sizeof(T);
    return b;
  }
};

__device__ __forceinline__ void stsm_x4(uint32_t addr, const uint32_t (&r)[4]) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1,%2,%3,%4};\n" ::"r"(addr), "r"(r[0]), "r"(r[1]),
               "r"(r[2]), "r"(r[3])
               : "memory");
}
__device__ __forceinline__ uint4 lds_u128(uint32_t addr) {
  uint4 v;
  asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(addr));
  return v;
}

// fp16 mma with fp16 accumulators: d (2 half2 registers: rows g and g+8) += a · b.
__device__ __forceinline__ void mma_f16acc(uint32_t (&d)[2], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f16.f16.f16.f16 {%0,%1}, {%2,%3,%4,%5}, {%6,%7}, {%0,%1};\n"
      : "+r"(d[0]), "+r"(d[1])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <class T, int BITS, bool LOWRANK, int RC, int RT, int NT, int WARPS, int MINB = 2, bool DEQUANT = false>
__global__ void __launch_bounds__(WARPS * 32, MINB) qmm_decode_kernel(const QmmParams p) {
  using Tile = DecodeTile<T, BITS, LOWRANK, RT, NT, WARPS, DEQUANT>;
  using A = Act<T>;
  using T2 = typename A::T2;
  constexpr int PF = Tile::kPipe;
  extern __shared__ uint4 smem_raw[];
  uint32_t* lut = reinterpret_cast<uint32_t*>(smem_raw);
  const int kc = p.groups_per_split * 64;
  const int xstride = kc + 8;  // +16 B per row: conflict-free ldmatrix
  T* xs = reinterpret_cast<T*>(lut + PairTable<BITS>::kWords);
  T* ats = xs + (DEQUANT ? WARPS * Tile::kStageElems : Tile::kTokens * xstride);  // xs: staging when DEQUANT
  const int at_stride = p.rp + 8;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2;
  const T* X = static_cast<const T*>(p.X);
  const int64_t groups_total = p.Kp / 64;
  const int64_t g_begin = int64_t(blockIdx.y) * p.groups_per_split;
  const int ng = int(min(int64_t(p.groups_per_split), groups_total - g_begin));
  const int64_t kbase = g_begin * 64;
  const int64_t tok0 = int64_t(blockIdx.z) * Tile::kTokens;

  // This warp's row tiles are consecutive: rt0 .. rt0 + RT - 1, of which the first n_valid have codes.
  const int64_t rt0 = p.row_begin / 16 + (int64_t(blockIdx.x) * WARPS + warp) * RT;
  const int n_valid = int(max(int64_t(0), min(int64_t(RT), (p.row_end + 15) / 16 - rt0)));
  const uint8_t* code_base = p.codes + (rt0 * groups_total + g_begin) * BITS * 128;
  const int code_rt_stride = int(groups_total) * BITS * 128;

  // Block scales of one group (G % 64 == 0): rows g and g+8 of each row tile.
  const bool block_per_group = !LOWRANK && p.G % 64 == 0;
  const T* scales = static_cast<const T*>(p.scales);
  const T* scale_row = scales + (rt0 * 16 + g) * p.nblocks;  // row g of tile rt0
  const int64_t scale_rt_stride = 16 * p.nblocks;
  auto load_group_all = [&](GroupCodes (&c)[RT], T (&sc)[RT][2], int gi) {
#pragma unroll
    for (int rt = 0; rt < RT; ++rt) {
      if (rt < n_valid) {
        load_group<BITS>(c[rt], code_base + rt * code_rt_stride + gi * BITS * 128, lane);
        if (block_per_group) {
          const int64_t blk = (kbase + int64_t(gi) * 64) / p.G;
          sc[rt][0] = scale_row[rt * scale_rt_stride + blk];
          sc[rt][1] = scale_row[rt * scale_rt_stride + 8 * p.nblocks + blk];
        }
      } else {
        c[rt] = GroupCodes{{0, 0, 0, 0}};
      }
    }
  };

  // 1. The first groups' codes go out before anything else.
  GroupCodes cw[PF][RT];
  T scw[PF][RT][2];
#pragma unroll
  for (int s = 0; s < PF; ++s) {
    if (s < ng) load_group_all(cw[s], scw[s], s);
    else
#pragma unroll
      for (int rt = 0; rt < RT; ++rt) cw[s][rt] = GroupCodes{{0, 0, 0, 0}};
  }

  // 2. This slice of X (tokens x kc, zero beyond M and K) and of A^T to shared memory.
  {
    if constexpr (!DEQUANT)
      load_x_tile<T>(xs, xstride, X, p.M, p.K, p.x_vec, tok0, Tile::kTokens, kbase, kc, tid, Tile::kThreads);
    if constexpr (LOWRANK) {
      const T* AT = static_cast<const T*>(p.AT);
      const int per_row = p.rp / 8;
      for (int i = tid; i < ng * 64 * per_row; i += Tile::kThreads) {
        const int kr = i / per_row, c8 = (i % per_row) * 8;
        cp_async16(ats + kr * at_stride + c8, AT + (kbase + kr) * p.rp + c8);
      }
    }
    cp_async_commit();
  }

  // 3. The pair table.
  build_pair_table<T, BITS>(lut, p.levels, tid, Tile::kThreads);

  // 4. B rows of this warp's tiles as mma A fragments (held for the whole slice).
  uint32_t bf[RT][RC][4];
  if constexpr (LOWRANK) load_b_tiles<T, RT, RC>(bf, static_cast<const T*>(p.B), rt0, n_valid, p.rp, lane);

  float acc[RT][NT][4];
#pragma unroll
  for (int rt = 0; rt < RT; ++rt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) acc[rt][nt][0] = acc[rt][nt][1] = acc[rt][nt][2] = acc[rt][nt][3] = 0.f;

  cp_async_wait<0>();
  __syncthreads();

  // Byte addresses in shared memory of this lane's table column and ldmatrix rows.
  const uint32_t lut_base = smem_addr(lut), lane4 = uint32_t(lane) * 4;
  const uint32_t at_lane = smem_addr(ats + ((lane >> 4) * 8 + (lane & 7)) * at_stride + ((lane >> 3) & 1) * 8);
  const uint32_t x_lane =
      smem_addr(xs + ((lane & 7) + (NT > 1 ? (lane >> 4) * 8 : 0)) * xstride + ((lane >> 3) & 1) * 8);
  const uint32_t at_step_bytes = 16 * at_stride * sizeof(T);

  // DEQUANT: this warp's staging tiles; lane l gives the stmatrix row address of matrix l/8 (rows
  // 0-7 / 8-15, k 0-7 / 8-15: the A-fragment register order).
  const uint32_t stage_warp = smem_addr(xs + warp * Tile::kStageElems);
  const uint32_t stage_lane =
      stage_warp + (((lane & 7) + ((lane >> 3) & 1) * 8) * Tile::kStageStride + (lane >> 4) * 8) * sizeof(T);
  auto store_group = [&](int gi) {
    __syncwarp();
    T* W = static_cast<T*>(p.W);
    const int64_t k0 = kbase + int64_t(gi) * 64;
    const bool vec = (p.K % 8 == 0) && k0 + 64 <= p.K;
#pragma unroll
    for (int rt = 0; rt < RT; ++rt) {
      if (rt >= n_valid) break;
      const int64_t row0 = (rt0 + rt) * 16 - p.row_begin;  // row of W (the slab starts at row_begin)
#pragma unroll
      for (int i = 0; i < 4; ++i) {  // 16 rows x 8 chunks of 16 bytes: 4 per lane
        const int c = lane + 32 * i, r = c >> 3, c8 = (c & 7) * 8;
        const int64_t row = row0 + r;
        if (row >= p.M) continue;
        const uint32_t src = stage_warp + ((rt * 16 + r) * Tile::kStageStride + c8) * sizeof(T);
        if (vec) {
          *reinterpret_cast<uint4*>(W + row * p.K + k0 + c8) = lds_u128(src);
        } else {
          const uint4 v = lds_u128(src);
          const T* e = reinterpret_cast<const T*>(&v);
#pragma unroll
          for (int j = 0; j < 8; ++j)
            if (k0 + c8 + j < p.K) W[row * p.K + k0 + c8 + j] = e[j];
        }
      }
    }
    __syncwarp();
  };

  auto compute_group = [&](const GroupCodes (&c)[RT], const T (&sc)[RT][2], int gi) {
    const uint32_t at_group = at_lane + uint32_t(gi) * 4 * at_step_bytes;
    const uint32_t x_group = x_lane + uint32_t(gi) * 64 * sizeof(T);
    auto step = [&](auto S_) {
      constexpr int S = decltype(S_)::value;
      uint32_t w[RT][4];
      uint32_t lev[RT][4];
#pragma unroll
      for (int rt = 0; rt < RT; ++rt) {
        lev[rt][0] = lds_u32(lut_base + pair_offset<BITS, S, 0>(c[rt], lane4));
        lev[rt][1] = lds_u32(lut_base + pair_offset<BITS, S, 1>(c[rt], lane4));
        lev[rt][2] = lds_u32(lut_base + pair_offset<BITS, S, 2>(c[rt], lane4));
        lev[rt][3] = lds_u32(lut_base + pair_offset<BITS, S, 3>(c[rt], lane4));
      }
      if constexpr (LOWRANK) {
        uint32_t af[RC][4];
#pragma unroll
        for (int ch = 0; ch < RC; ++ch) ldsm_x4(af[ch], at_group + S * at_step_bytes + ch * 16 * sizeof(T));
#pragma unroll
        for (int rt = 0; rt < RT; ++rt) {
          if constexpr (std::is_same_v<T, __half>) {
            uint32_t s0[2] = {0, 0}, s1[2] = {0, 0};
#pragma unroll
            for (int ch = 0; ch < RC; ++ch) {
              mma_f16acc(s0, bf[rt][ch], af[ch][0], af[ch][1]);
              mma_f16acc(s1, bf[rt][ch], af[ch][2], af[ch][3]);
            }
            w[rt][0] = as_u32(__hmul2(from_u32<T2>(lev[rt][0]), from_u32<T2>(s0[0])));
            w[rt][1] = as_u32(__hmul2(from_u32<T2>(lev[rt][1]), from_u32<T2>(s0[1])));
            w[rt][2] = as_u32(__hmul2(from_u32<T2>(lev[rt][2]), from_u32<T2>(s1[0])));
            w[rt][3] = as_u32(__hmul2(from_u32<T2>(lev[rt][3]), from_u32<T2>(s1[1])));
          } else {
            float s0[4] = {0.f, 0.f, 0.f, 0.f}, s1[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
            for (int ch = 0; ch < RC; ++ch) {
              A::mma(s0, bf[rt][ch], af[ch][0], af[ch][1]);
              A::mma(s1, bf[rt][ch], af[ch][2], af[ch][3]);
            }
            w[rt][0] = as_u32(__hmul2(from_u32<T2>(lev[rt][0]), A::pack(s0[0], s0[1])));
            w[rt][1] = as_u32(__hmul2(from_u32<T2>(lev[rt][1]), A::pack(s0[2], s0[3])));
            w[rt][2] = as_u32(__hmul2(from_u32<T2>(lev[rt][2]), A::pack(s1[0], s1[1])));
            w[rt][3] = as_u32(__hmul2(from_u32<T2>(lev[rt][3]), A::pack(s1[2], s1[3])));
          }
        }
      } else {
#pragma unroll
        for (int rt = 0; rt < RT; ++rt) {
          T2 p0, p8;
          if (block_per_group) {
            p0.x = p0.y = sc[rt][0];
            p8.x = p8.y = sc[rt][1];
          } else if (rt < n_valid) {
            const int64_t blk = (kbase + gi * 64 + S * 16) / p.G;
            p0.x = p0.y = scale_row[rt * scale_rt_stride + blk];
            p8.x = p8.y = scale_row[rt * scale_rt_stride + 8 * p.nblocks + blk];
          } else {
            p0.x = p0.y = p8.x = p8.y = A::from_float(0.f);
          }
          w[rt][0] = as_u32(__hmul2(from_u32<T2>(lev[rt][0]), p0));
          w[rt][1] = as_u32(__hmul2(from_u32<T2>(lev[rt][1]), p8));
          w[rt][2] = as_u32(__hmul2(from_u32<T2>(lev[rt][2]), p0));
          w[rt][3] = as_u32(__hmul2(from_u32<T2>(lev[rt][3]), p8));
        }
      }
      if constexpr (DEQUANT) {
#pragma unroll
        for (int rt = 0; rt < RT; ++rt) stsm_x4(stage_lane + (rt * 16 * Tile::kStageStride + S * 16) * sizeof(T), w[rt]);
        return;
      }
      // X^T fragments: ldmatrix rows are tokens, 8 contiguous k each.
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
    if constexpr (DEQUANT) store_group(gi);
  };

  // 5. The stream: group gi is computed from registers while the next PF - 1 are in flight; its
  // registers are then refilled with group gi + PF (a ring indexed at compile time, no copies).
  for (int g0 = 0; g0 < ng; g0 += PF) {
#pragma unroll
    for (int s = 0; s < PF; ++s) {
      const int gi = g0 + s;
      if (gi < ng) {
        compute_group(cw[s], scw[s], gi);
        if (gi + PF < ng) load_group_all(cw[s], scw[s], gi + PF);
      }
    }
  }

  if constexpr (DEQUANT) return;
  // d0 d1: (row g, tokens 2t, 2t+1); d2 d3: (row g+8, same tokens)
  const int t = lane & 3;
  const bool atomic = gridDim.y > 1;
#pragma unroll
  for (int rt = 0; rt < RT; ++rt) {
    if (rt >= n_valid) continue;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const int64_t row = (rt0 + rt) * 16 + g;
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
}

}  // namespace lords::cuda::qmm
