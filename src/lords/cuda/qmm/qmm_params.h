// Arguments of the qmatmul kernels (plain data, passed by value).
#pragma once

#include <cstdint>

namespace lords::cuda::qmm {


struct QmmParams {
  const uint8_t* codes;  // fragment layout
  int64_t code_rt_stride;     // bytes from a row tile's group to the next row tile's (fragment_layout.h)
  int64_t code_group_stride;  // bytes from a group to the next group of the same row tile
  const void* B;         // (Np, rp)
  const void* AT;        // (Kp, rp)
  const void* scales;    // (Np, nblocks)
  const void* X;         // (M, K)
  float* Y;              // (M, N) fp32
  void* W;               // dequantize: (rows, K) output
  int64_t M, N, K, Np, Kp;
  int rp;
  int r;  // the rank (rp is it padded to 16)
  int G;
  int64_t nblocks;
  int stages_per_split;  // fused kernel: k stages each blockIdx.z covers
  int groups_per_split;  // decode kernel: 64-k groups each blockIdx.y covers
  int atomic;            // split-K: accumulate into Y with atomics
  int x_vec;             // X rows are 16-byte aligned and K % 8 == 0
  int nbuf;              // shared-memory stage buffers: 2 (double-buffered) when a block walks > 1 stage
  int64_t row_begin;     // first row (a multiple of 16; dequantize works on a slab of rows)
  int64_t row_end;       // one past the last row with codes: Np, or the slab's end
  // Hopper prefill: tiles from tail_begin on (the last, partly empty round) are split into tail_split
  // K parts that meet in Y by atomics; 1 (or 0): no tail split.
  int64_t tail_begin;
  int tail_split;
  int stagger;  // Hopper prefill: odd blocks take their last-round K part first (wgmma_unit)
  // Hopper prefill, stream-K (qmm_wgmma.cuh, wgmma_walk): the tiles shared out evenly in k blocks; a
  // tile split between two blocks meets in Y through its flag (sk_flags[tile], zero between calls;
  // the launcher checks that sk_flag_count are enough). Null: no stream-K.
  int* sk_flags;
  int64_t sk_flag_count;
  float levels[16];
};

}  // namespace lords::cuda::qmm
