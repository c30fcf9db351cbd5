// Arguments of the qmatmul kernels (plain data, passed by value).
#pragma once

#include <cstdint>

namespace lords::cuda::qmm {

constexpr int kMaxRankChunks = 4;  // rank <= 64, in chunks of 16

struct QmmParams {
  const uint8_t* codes;  // fragment layout
  const void* B;         // (Np, rp)
  const void* AT;        // (Kp, rp)
  const void* scales;    // (Np, nblocks)
  const void* X;         // (M, K)
  float* Y;              // (M, N) fp32
  void* W;               // dequantize: (rows, K) output
  int64_t M, N, K, Np, Kp;
  int rp;
  int G;
  int64_t nblocks;
  int stages_per_split;  // k stages each blockIdx.z covers
  int atomic;            // split-K: accumulate into Y with atomics
  int x_vec;             // X rows are 16-byte aligned and K % 8 == 0
  int64_t row_begin;     // dequantize: first row
  float levels[16];
};

}  // namespace lords::cuda::qmm
