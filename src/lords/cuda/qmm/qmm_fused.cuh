// The fused qmatmul kernel on GPUs other than Hopper (17 <= M < 128 tokens; qmm_decode.cuh below,
// dequantize + cuBLAS above; Hopper runs qmm_wgmma.cuh instead, and this one where K % 8 != 0):
// each warp rebuilds W_hat fragments of RT row tiles in registers (codes -> levels from a 16-word
// shared table, times the scale tile) and multiplies them with NT 8-token tiles of X on the tensor
// cores. W_hat is never written.
//
// Block: WM x WN warps covering 16*RT*WM rows x 8*NT*WN tokens. K is walked in stages of KC: the X
// tile and, for low-rank scales, the A^T tile go to shared memory through cp.async (double-buffered
// when a block walks more than one stage); each warp issues the loads of a whole stage's codes into
// registers before it waits for anything. blockIdx.z splits K (decode has too few row tiles to fill
// the GPU); partial sums are then added into Y with atomics. RC: rank chunks of 16 held in registers.
#pragma once

#include <type_traits>

#include "lords/cuda/qmm/qmm_device.cuh"

namespace lords::cuda::qmm {

template <int WM, int WN, int RT, int NT, int KC>
struct FusedTile {
  static constexpr int kThreads = WM * WN * 32;
  static constexpr int kRows = 16 * RT * WM;
  static constexpr int kTokens = 8 * NT * WN;
  static constexpr int kGroups = KC / 64;
  static constexpr int kXStride = KC + 8;  // +16 B per row: conflict-free ldmatrix
  __host__ __device__ static int at_stride(int rp) { return rp + 8; }
  static size_t smem_bytes(bool lowrank, int rp, int nbuf, int elem) {
    size_t b = kLutWords * 4;
    b += size_t(nbuf) * kTokens * kXStride * elem;
    if (lowrank) b += size_t(nbuf) * KC * at_stride(rp) * elem;
    return b;
  }
};

template <class T, int BITS, bool LOWRANK, int RC, int WM, int WN, int RT, int NT, int KC, int MINB>
__global__ void __launch_bounds__(WM* WN * 32, MINB) qmm_fused_kernel(const QmmParams p) {
  using Tile = FusedTile<WM, WN, RT, NT, KC>;
  using A = Act<T>;
  extern __shared__ uint4 smem_raw[];
  uint32_t* lut = reinterpret_cast<uint32_t*>(smem_raw);
  T* xs = reinterpret_cast<T*>(lut + kLutWords);
  T* ats = xs + p.nbuf * Tile::kTokens * Tile::kXStride;
  const int at_stride = Tile::at_stride(p.rp);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp % WM, wn = warp / WM;
  const T* X = static_cast<const T*>(p.X);
  const T* AT = static_cast<const T*>(p.AT);

  build_lut<T>(lut, p.levels, tid, 1 << BITS);

  const int64_t tok0 = int64_t(blockIdx.y) * Tile::kTokens;
  const int64_t groups_total = p.Kp / 64;
  const int stages_total = int((p.Kp + KC - 1) / KC);
  const int st_begin = blockIdx.z * p.stages_per_split;
  const int st_end = min(st_begin + p.stages_per_split, stages_total);

  // Row tiles of this warp (counted from row_begin / 16); one past the rows has no codes.
  int64_t rt_index[RT];
  bool rt_valid[RT];
#pragma unroll
  for (int rt = 0; rt < RT; ++rt) {
    rt_index[rt] = p.row_begin / 16 + int64_t(blockIdx.x) * WM * RT + wm * RT + rt;
    rt_valid[rt] = rt_index[rt] * 16 < p.row_end;
  }

  // The warp's row tiles are consecutive; the valid ones come first.
  int n_valid = 0;
#pragma unroll
  for (int rt = 0; rt < RT; ++rt) n_valid += rt_valid[rt];
  uint32_t bf[RT][RC][4];
  if constexpr (LOWRANK) load_b_tiles<T, RT, RC>(bf, static_cast<const T*>(p.B), rt_index[0], n_valid, p.rp, lane);

  float acc[RT][NT][4];
#pragma unroll
  for (int rt = 0; rt < RT; ++rt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) acc[rt][nt][0] = acc[rt][nt][1] = acc[rt][nt][2] = acc[rt][nt][3] = 0.f;

  auto load_stage = [&](int st, int buf) {
    const int64_t kbase = int64_t(st) * KC;
    load_x_tile<T>(xs + buf * Tile::kTokens * Tile::kXStride, Tile::kXStride, X, p.M, p.K, p.x_vec, tok0,
                   Tile::kTokens, kbase, KC, tid, Tile::kThreads);
    if constexpr (LOWRANK) {
      T* adst = ats + buf * KC * at_stride;
      const int chunks_per_row = p.rp / 8;
      for (int i = tid; i < KC * chunks_per_row; i += Tile::kThreads) {
        const int kr = i / chunks_per_row, c8 = (i % chunks_per_row) * 8;
        if (kbase + kr < p.Kp) cp_async16(adst + kr * at_stride + c8, AT + (kbase + kr) * p.rp + c8);
      }
    }
    cp_async_commit();
  };

  const int g = lane >> 2, t = lane & 3;
  load_stage(st_begin, 0);
  for (int st = st_begin; st < st_end; ++st) {
    const int buf = p.nbuf == 1 ? 0 : (st - st_begin) & 1;
    // The codes of the whole stage, issued before anything waits.
    GroupCodes cw[RT][Tile::kGroups];
    const int64_t left = groups_total - int64_t(st) * Tile::kGroups;
    const int groups_here = left < Tile::kGroups ? int(left) : Tile::kGroups;
#pragma unroll
    for (int rt = 0; rt < RT; ++rt)
#pragma unroll
      for (int gi = 0; gi < Tile::kGroups; ++gi)
        if (rt_valid[rt] && gi < groups_here)
          load_group<BITS>(cw[rt][gi], p.codes + (rt_index[rt] * groups_total + int64_t(st) * Tile::kGroups + gi) * BITS * 128, lane);
        else
          cw[rt][gi] = GroupCodes{{0, 0, 0, 0}};

    if (st + 1 < st_end && p.nbuf == 2) {
      load_stage(st + 1, buf ^ 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();

    const T* xbuf = xs + buf * Tile::kTokens * Tile::kXStride;
    const T* atbuf = ats + buf * KC * at_stride;
#pragma unroll
    for (int gi = 0; gi < Tile::kGroups; ++gi) {
      if (gi < groups_here) {
        auto step = [&](auto S_) {
          constexpr int S = decltype(S_)::value;
          const int kk = gi * 64 + S * 16;  // step offset inside the stage
          uint32_t lev[RT][4], w[RT][4];
#pragma unroll
          for (int rt = 0; rt < RT; ++rt) level_pairs<BITS, S>(lev[rt], cw[rt][gi], lut, lane);
          if constexpr (LOWRANK) {
            lowrank_w_frags<T, RT, RC>(w, lev, bf, atbuf + kk * at_stride, at_stride, p.rp, lane);
          } else {
            const int64_t blk = (int64_t(st) * KC + kk) / p.G;
#pragma unroll
            for (int rt = 0; rt < RT; ++rt)
              if (rt_valid[rt])
                block_w_frag<T>(w[rt], lev[rt], static_cast<const T*>(p.scales), rt_index[rt] * 16, p.nblocks, blk, lane);
              else
                w[rt][0] = w[rt][1] = w[rt][2] = w[rt][3] = 0;
          }
          {
            // X^T fragments: ldmatrix rows are tokens, 8 contiguous k each.
            const int tok_base = wn * NT * 8;
#pragma unroll
            for (int nt = 0; nt < NT; nt += 2) {
              if (nt + 1 < NT) {
                uint32_t xf[4];
                ldmatrix_x4(xf, xbuf + (tok_base + nt * 8 + (lane & 7) + (lane >> 4) * 8) * Tile::kXStride + kk +
                                    ((lane >> 3) & 1) * 8);
#pragma unroll
                for (int rt = 0; rt < RT; ++rt) {
                  A::mma(acc[rt][nt], w[rt], xf[0], xf[1]);
                  A::mma(acc[rt][nt + 1], w[rt], xf[2], xf[3]);
                }
              } else {
                uint32_t xf[2];
                ldmatrix_x2(xf, xbuf + (tok_base + nt * 8 + (lane & 7)) * Tile::kXStride + kk + ((lane >> 3) & 1) * 8);
#pragma unroll
                for (int rt = 0; rt < RT; ++rt) A::mma(acc[rt][nt], w[rt], xf[0], xf[1]);
              }
            }
          }
        };
        step(std::integral_constant<int, 0>{});
        step(std::integral_constant<int, 1>{});
        step(std::integral_constant<int, 2>{});
        step(std::integral_constant<int, 3>{});
      }
    }
    if (st + 1 < st_end) {
      __syncthreads();  // the next stage's loads overwrite a buffer just read
      if (p.nbuf == 1) load_stage(st + 1, 0);
    }
  }
  // d0 d1: (row g, tokens 2t, 2t+1); d2 d3: (row g+8, same tokens)
#pragma unroll
  for (int rt = 0; rt < RT; ++rt) {
    if (!rt_valid[rt]) continue;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const int64_t row = rt_index[rt] * 16 + g;
      const int64_t tok = tok0 + wn * NT * 8 + nt * 8 + 2 * t;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int64_t r = row + (i >> 1) * 8, m = tok + (i & 1);
        if (r < p.N && m < p.M) {
          float* y = p.Y + m * p.N + r;
          if (p.atomic) atomicAdd(y, acc[rt][nt][i]);
          else *y = acc[rt][nt][i];
        }
      }
    }
  }
}

}  // namespace lords::cuda::qmm
