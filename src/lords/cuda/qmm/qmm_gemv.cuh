// The single-token qmatmul kernel (M = 1): the decode step's GEMV in lookup-GEMM form.
//
// For one token x the product needs no scaled weight at all:
//   y[n] = sum_k level[Q[n,k]] * (B A)[n,k] * x[k] = sum_j B[n,j] * Z[n,j],
//   Z = L · Xr^T,  L[n,k] = level[Q[n,k]],  Xr^T[k,j] = A[j,k] * x[k]  (K x rp, built once per block).
// So the level fragments (a table lookup) go straight into the tensor cores as the A operand, with the
// rp columns of Xr^T as the B operand: rp / 8 mma per 16 x 16 weight tile and nothing else per weight
// (the decode kernel, qmm_decode.cuh, spends rp / 8 mma on the scale tile, four half2 multiplies and one
// more mma on x). B is applied once per row at the end, in fp32.
//
// Block scales (the NF4 baseline) use the same stream: the mma multiplies levels by x alone (x in
// column 0 of the B operand) into a per-group accumulator that one scale per row and group multiplies
// (G % 64 == 0).
//
// The stream is the decode kernel's (codes in a register ring PF items deep, the code-pair level table,
// no barrier in the main loop), with three changes measured on the H100 (docs/BENCHMARKS.md 7.1):
// - persistent blocks, one per SM (16 warps), each walking many chunks of row tiles over one K slice,
//   so the block's start (pair table, Xr^T slice) is paid once per block instead of once per 256 rows;
// - the code stream walks a pointer (one add per item) instead of recomputing 64-bit addresses;
// - the pair table at a fixed shared address, so that the lookup address is one byte permute.
// The K slices' partial sums are added into Y with atomics when there is more than one.
#pragma once

#include "lords/cuda/qmm/qmm_decode.cuh"

namespace lords::cuda::qmm {

// The pair table sits at this shared-memory address in every block, so that one byte permute of the
// fragment word with (kLutAt | lane * 4) is the lookup's address: no add per lookup (the decode
// kernel's table base is a register). Below it: the x slice and the Xr^T slice.
constexpr uint32_t kGemvLutAt = 0x10000;

template <class T, int BITS, bool LOWRANK>
struct GemvSmem {
  // Bytes of the slices below the table for groups_per_split * 64 k.
  static size_t slices(int groups_per_split, int rp) {
    const size_t kc = size_t(groups_per_split) * 64;
    return (kc + 8) * sizeof(T) + (LOWRANK ? kc * size_t(rp + 8) * sizeof(T) : 0);
  }

  // Room the slices may take: the table's address less the block's reserved shared memory (1 KB).
  static constexpr size_t kSliceRoom = kGemvLutAt - 1024;
  // Dynamic shared memory to ask for (its start is at most kGemvLutAt - kSliceRoom).
  static constexpr size_t kBytes = kGemvLutAt + size_t(PairTable<BITS>::kWords) * 4;
};

__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldsm_x2_trans(uint32_t (&r)[2], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(addr));
}

// Shared address of the table entry of register pair P of step S; lane_at = kGemvLutAt | lane * 4.
template <int BITS, int S, int P>
__device__ __forceinline__ uint32_t pair_address(const GroupCodes& c, uint32_t lane_at) {
  static_assert(kGemvLutAt == 0x10000, "the byte permute puts the table's address in byte 2");
  if constexpr (BITS == 4) return __byte_perm(c.w[S], lane_at, 0x7604 + (P << 4));  // (2, byte P, lane * 4)
  else return (pair_index<BITS, S, P>(c) << 8) | lane_at;
}

// B's two rows of a row tile for the final product: rows g and g + 8, columns 8 jc + 2t and + 1 (as
// packed pairs), from b_lane = B + (row g) * rp + 2t; zero where the tile has no rows.
template <class T, int JC>
__device__ __forceinline__ void load_b_pairs(uint32_t (&bq)[JC][2], const T* b_lane, int rp, bool valid) {
#pragma unroll
  for (int jc = 0; jc < JC; ++jc) {
    const uint32_t* b0 = reinterpret_cast<const uint32_t*>(b_lane + jc * 8);
    bq[jc][0] = valid ? b0[0] : 0u;
    bq[jc][1] = valid ? b0[4 * rp] : 0u;  // row + 8
  }
}

// y = sum_j B[row, j] Z[row, j] for rows g (y0) and g + 8 (y8) of a row tile, in fp32, reduced over
// the four lanes t of a row. z(jc, i): accumulator i of column tile jc (m16n8 order: row g + 8 (i / 2),
// column 8 jc + 2t + i % 2).
template <class T, int JC, class Z>
__device__ __forceinline__ void lowrank_row_pair(float& y0, float& y8, const uint32_t (&bq)[JC][2], Z&& z) {
  using A = Act<T>;
  using T2 = typename A::T2;
  y0 = y8 = 0.f;
#pragma unroll
  for (int jc = 0; jc < JC; ++jc) {
    const T2 u = from_u32<T2>(bq[jc][0]), v = from_u32<T2>(bq[jc][1]);
    y0 = fmaf(z(jc, 0), A::to_float(u.x), fmaf(z(jc, 1), A::to_float(u.y), y0));
    y8 = fmaf(z(jc, 2), A::to_float(v.x), fmaf(z(jc, 3), A::to_float(v.y), y8));
  }
  y0 += __shfl_xor_sync(0xFFFFFFFFu, y0, 1);
  y8 += __shfl_xor_sync(0xFFFFFFFFu, y8, 1);
  y0 += __shfl_xor_sync(0xFFFFFFFFu, y0, 2);
  y8 += __shfl_xor_sync(0xFFFFFFFFu, y8, 2);
}

// Rows row and row + 8 of Y (the caller's lane t == 0): stored, or added where K slices meet.
__device__ __forceinline__ void store_row_pair(float* Y, int64_t N, int64_t row, float y0, float y8, bool atomic) {
  if (row < N) {
    if (atomic) atomicAdd(Y + row, y0);
    else Y[row] = y0;
  }
  if (row + 8 < N) {
    if (atomic) atomicAdd(Y + row + 8, y8);
    else Y[row + 8] = y8;
  }
}

// Persistent: grid y = K slices of p.groups_per_split groups, grid x = blocks per slice. Warp w of a
// slice (w = blockIdx.x * WARPS + warp) walks the chunks of RT row tiles c = w, w + W, w + 2W, ...
// (W = gridDim.x * WARPS) over the slice's groups, as one stream of (chunk, group) items: the
// register ring runs on across chunk boundaries, so the codes of the next chunk are in flight while a
// chunk's result is reduced. The block's one-time work (pair table, Xr^T slice) is paid once per
// block, not once per 16 * RT * WARPS rows.
// JC: n8 column tiles of the B operand, the rank rounded up to 8 (LOWRANK; the stored rp pads it to 16,
// and a rank of 17..24 spends three mma per step, not four); 1 for block scales. PF: items of codes
// held in registers. Block scales need G % 64 == 0 (one scale per row and group).
template <class T, int BITS, bool LOWRANK, int JC, int RT, int WARPS, int PF>
__global__ void __launch_bounds__(WARPS * 32, 1) qmm_gemv_kernel(const QmmParams p) {
  using A = Act<T>;
  using T2 = typename A::T2;
  static_assert(LOWRANK || JC == 1, "block scales use one column tile");
  constexpr int kThreads = WARPS * 32;
  extern __shared__ uint4 smem_raw[];
  const int kc = p.groups_per_split * 64;
  T* xs = reinterpret_cast<T*>(smem_raw);
  T* xr = xs + kc + 8;  // Xr^T (kc, rp) with row stride rp + 8: conflict-free ldmatrix
  const int xr_stride = p.rp + 8;
  uint32_t* lut = reinterpret_cast<uint32_t*>(reinterpret_cast<char*>(smem_raw) + (kGemvLutAt - smem_addr(smem_raw)));

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int64_t groups_total = p.Kp / 64;
  const int64_t g_begin = int64_t(blockIdx.y) * p.groups_per_split;
  const int ng = int(min(int64_t(p.groups_per_split), groups_total - g_begin));
  const int64_t kbase = g_begin * 64;
  if (tid == 0 && smem_addr(xr + (LOWRANK ? kc * xr_stride : 0)) > kGemvLutAt) __trap();  // launcher's bound

  // This warp's chunks and items.
  const int64_t tiles = (p.row_end - p.row_begin + 15) / 16;  // row tiles with codes
  const int64_t chunks = (tiles + RT - 1) / RT;
  const int64_t w0 = int64_t(blockIdx.x) * WARPS + warp, wstride = int64_t(gridDim.x) * WARPS;
  const int my_chunks = w0 < chunks ? int((chunks - w0 + wstride - 1) / wstride) : 0;
  const int n_items = my_chunks * ng;
  const int64_t rt_first = p.row_begin / 16 + w0 * RT;  // first row tile of the first chunk
  auto chunk_valid = [&](int j) { return int(min(int64_t(RT), tiles - (w0 + int64_t(j) * wstride) * RT)); };

  // The load stream walks pointers: one add per item, one more per chunk.
  const int64_t chunk_rows = wstride * RT * 16;
  const uint8_t* lptr = p.codes + lane * lane_code_bytes<BITS>() + rt_first * p.code_rt_stride + g_begin * p.code_group_stride;
  const int64_t lptr_jump = wstride * RT * p.code_rt_stride - ng * p.code_group_stride;
  const int64_t rs = p.code_rt_stride;
  const int hi_off = 256 - 4 * lane;  // 3 bits: the high words follow the 2-bit part
  int lg = 0, lj = 0, lnv = chunk_valid(0);
  // Block scales: row g of the first tile, the slice's first block; one block is G / 64 groups.
  const T* sptr = static_cast<const T*>(p.scales) + (rt_first * 16 + g) * p.nblocks + kbase / p.G;
  const int gpb = p.G / 64;
  const int64_t sptr_jump = chunk_rows * p.nblocks;
  int lsub = int(g_begin % gpb), lblk = 0;
  auto load_next = [&](GroupCodes (&c)[RT], T (&sc)[RT][2]) {
#pragma unroll
    for (int rt = 0; rt < RT; ++rt) {
      if (rt < lnv) {
        load_group_at<BITS>(c[rt], lptr + rt * rs, hi_off);
        if constexpr (!LOWRANK) {
          sc[rt][0] = sptr[rt * 16 * p.nblocks + lblk];
          sc[rt][1] = sptr[(rt * 16 + 8) * p.nblocks + lblk];
        }
      } else {
        c[rt] = GroupCodes{{0, 0, 0, 0}};
      }
    }
    lptr += p.code_group_stride;
    if constexpr (!LOWRANK)
      if (++lsub == gpb) lsub = 0, ++lblk;
    if (++lg == ng) {
      lg = 0, ++lj;
      lptr += lptr_jump;
      lnv = chunk_valid(lj);
      if constexpr (!LOWRANK) sptr += sptr_jump, lblk = 0, lsub = int(g_begin % gpb);
    }
  };

  // 1. The first items' codes go out before anything else.
  GroupCodes cw[PF][RT];
  T scw[PF][RT][2];
#pragma unroll
  for (int s = 0; s < PF; ++s) {
    if (s < n_items) load_next(cw[s], scw[s]);
    else
#pragma unroll
      for (int rt = 0; rt < RT; ++rt) cw[s][rt] = GroupCodes{{0, 0, 0, 0}};
  }

  // 2. A^T's slice straight into Xr^T's rows and this slice of x (zero beyond K), in one round trip,
  // with the pair table built while they travel; then (LOWRANK) Xr^T = A^T scaled by x per k, in place.
  // (A^T used to be read only after x had arrived: two round trips before the first item.)
  const int per_row = p.rp / 8;  // 16-byte chunks of an A^T row
  if constexpr (LOWRANK) {
    const T* AT = static_cast<const T*>(p.AT);
    for (int i = tid; i < ng * 64 * per_row; i += kThreads) {
      const int kr = i / per_row, c8 = i - kr * per_row;
      cp_async16(xr + kr * xr_stride + c8 * 8, AT + (kbase + kr) * p.rp + c8 * 8);
    }
  }
  load_x_tile<T>(xs, kc + 8, static_cast<const T*>(p.X), 1, p.K, p.x_vec, 0, 1, kbase, kc, tid, kThreads);
  cp_async_commit();
  build_pair_table<T, BITS>(lut, p.levels, tid, kThreads);
  cp_async_wait<0>();
  __syncthreads();
  if constexpr (LOWRANK) {
    for (int i = tid; i < ng * 64 * per_row; i += kThreads) {
      const int kr = i / per_row, c8 = i - kr * per_row;
      uint4* d = reinterpret_cast<uint4*>(xr + kr * xr_stride + c8 * 8);
      uint4 v = *d;
      T2 xk;
      xk.x = xk.y = xs[kr];
      T2* e = reinterpret_cast<T2*>(&v);
#pragma unroll
      for (int q = 0; q < 4; ++q) e[q] = __hmul2(e[q], xk);
      *d = v;
    }
    __syncthreads();
  }

  // Accumulators: LOWRANK Z (rows g, g+8; columns jc * 8 + 2t, +1); block: the running sums of rows
  // g (acc[rt][0][0]) and g + 8 (acc[rt][0][1]) in the lanes with t == 0.
  float acc[RT][JC][4];
  auto zero_acc = [&] {
#pragma unroll
    for (int rt = 0; rt < RT; ++rt)
#pragma unroll
      for (int jc = 0; jc < JC; ++jc) acc[rt][jc][0] = acc[rt][jc][1] = acc[rt][jc][2] = acc[rt][jc][3] = 0.f;
  };
  zero_acc();

  const uint32_t lane_at = kGemvLutAt | uint32_t(lane) * 4;
  // ldmatrix.trans of Xr^T: matrix l/8 = (k half (l/8) & 1, columns 8 * (l/16)), row l % 8.
  const uint32_t xr_lane = smem_addr(xr + (((lane >> 3) & 1) * 8 + (lane & 7)) * xr_stride + (lane >> 4) * 8);
  const uint32_t xr_step_bytes = 16 * xr_stride * sizeof(T);
  // Block: x pairs (k 2t, 2t+1) and (2t+8, 2t+9) in column 0 only.
  const uint32_t x_lane = smem_addr(xs + 2 * t);
  const uint32_t x_mask = g == 0 ? 0xFFFFFFFFu : 0u;

  auto compute_group = [&](const GroupCodes (&c)[RT], const T (&sc)[RT][2], int gi) {
    float part[RT][4];
    if constexpr (!LOWRANK) {
#pragma unroll
      for (int rt = 0; rt < RT; ++rt) part[rt][0] = part[rt][1] = part[rt][2] = part[rt][3] = 0.f;
    }
    const uint32_t xr_group = xr_lane + uint32_t(gi) * 4 * xr_step_bytes;
    const uint32_t x_group = x_lane + uint32_t(gi) * 64 * sizeof(T);
    auto step = [&](auto S_) {
      constexpr int S = decltype(S_)::value;
      uint32_t lev[RT][4];
#pragma unroll
      for (int rt = 0; rt < RT; ++rt) {
        lev[rt][0] = lds_u32(pair_address<BITS, S, 0>(c[rt], lane_at));
        lev[rt][1] = lds_u32(pair_address<BITS, S, 1>(c[rt], lane_at));
        lev[rt][2] = lds_u32(pair_address<BITS, S, 2>(c[rt], lane_at));
        lev[rt][3] = lds_u32(pair_address<BITS, S, 3>(c[rt], lane_at));
      }
      if constexpr (LOWRANK) {
#pragma unroll
        for (int ch = 0; ch < JC / 2; ++ch) {
          uint32_t b[4];  // (k 0-7, j 0-7) (k 8-15, j 0-7) (k 0-7, j 8-15) (k 8-15, j 8-15)
          ldsm_x4_trans(b, xr_group + S * xr_step_bytes + ch * 16 * sizeof(T));
#pragma unroll
          for (int rt = 0; rt < RT; ++rt) {
            A::mma(acc[rt][2 * ch], lev[rt], b[0], b[1]);
            A::mma(acc[rt][2 * ch + 1], lev[rt], b[2], b[3]);
          }
        }
        if constexpr (JC % 2 == 1) {
          uint32_t b[2];  // lanes 0-15 address (k 0-15, j of the last tile)
          ldsm_x2_trans(b, xr_group + S * xr_step_bytes + (JC - 1) * 8 * sizeof(T));
#pragma unroll
          for (int rt = 0; rt < RT; ++rt) A::mma(acc[rt][JC - 1], lev[rt], b[0], b[1]);
        }
      } else {
        const uint32_t xa = x_group + S * 16 * sizeof(T);
        const uint32_t b0 = lds_u32(xa) & x_mask, b1 = lds_u32(xa + 8 * sizeof(T)) & x_mask;
#pragma unroll
        for (int rt = 0; rt < RT; ++rt) A::mma(part[rt], lev[rt], b0, b1);
      }
    };
    step(std::integral_constant<int, 0>{});
    step(std::integral_constant<int, 1>{});
    step(std::integral_constant<int, 2>{});
    step(std::integral_constant<int, 3>{});
    if constexpr (!LOWRANK) {
#pragma unroll
      for (int rt = 0; rt < RT; ++rt) {
        acc[rt][0][0] = fmaf(part[rt][0], A::to_float(sc[rt][0]), acc[rt][0][0]);
        acc[rt][0][1] = fmaf(part[rt][2], A::to_float(sc[rt][1]), acc[rt][0][1]);
      }
    }
  };

  // Rows g and g + 8 of each tile of a chunk: y = sum_j B[row, j] Z[row, j] (LOWRANK), reduced over
  // the four lanes t of a row. B is read at the chunk's first group (bq), so it has long arrived.
  const bool atomic = gridDim.y > 1;
  const T* bptr = static_cast<const T*>(p.B) + (rt_first * 16 + g) * p.rp + 2 * t;
  int64_t row0 = rt_first * 16 + g;  // row g of the compute stream's chunk
  uint32_t bq[RT][JC][2];
  auto load_b = [&](int nv) {
    if constexpr (LOWRANK) {
#pragma unroll
      for (int rt = 0; rt < RT; ++rt) load_b_pairs<T, JC>(bq[rt], bptr + rt * 16 * p.rp, p.rp, rt < nv);
    }
  };
  auto finish_chunk = [&](int nv) {
#pragma unroll
    for (int rt = 0; rt < RT; ++rt) {
      if (rt >= nv) continue;
      float y0, y8;
      if constexpr (LOWRANK) lowrank_row_pair<T, JC>(y0, y8, bq[rt], [&](int jc, int i) { return acc[rt][jc][i]; });
      else y0 = acc[rt][0][0], y8 = acc[rt][0][1];
      if (t == 0) store_row_pair(p.Y, p.N, row0 + rt * 16, y0, y8, atomic);
    }
    zero_acc();
    row0 += chunk_rows;
    bptr += chunk_rows * p.rp;
  };

  // 3. The stream: item i is computed from registers while the next PF - 1 are in flight; its
  // registers are then refilled with item i + PF (a ring indexed at compile time, no copies).
  int cg = 0, cj = 0, cnv = chunk_valid(0);  // compute position: group, chunk, its valid tiles
  for (int i0 = 0; i0 < n_items; i0 += PF) {
#pragma unroll
    for (int s = 0; s < PF; ++s) {
      if (i0 + s < n_items) {
        if (cg == 0) load_b(cnv);
        compute_group(cw[s], scw[s], cg);
        if (i0 + s + PF < n_items) load_next(cw[s], scw[s]);
        if (++cg == ng) {
          finish_chunk(cnv);
          cg = 0, cnv = chunk_valid(++cj);
        }
      }
    }
  }
}

}  // namespace lords::cuda::qmm

