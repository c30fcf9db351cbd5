// Launch configurations of the fused kernel, instantiated once per activation type
// (qmm_fused_f16.cu, qmm_fused_bf16.cu, so the two compile in parallel):
//   decode (M <= 8):  8 warps x 2 row tiles (256 rows) x 8 tokens, K stages of 256, split-K
//   decode (M <= 32): the same with 16 tokens per block
//   prefill:          2x2 warps, each 2 row tiles x 64 tokens (64 rows x 128 tokens), K stages of 64
//   dequantize:       8 warps x 2 row tiles, K stages of 256, writes W_hat instead of multiplying
#pragma once

#include <algorithm>

#include "lords/cuda/cuda_check.h"
#include "lords/cuda/device.h"
#include "lords/cuda/qmm/qmm_fused.cuh"
#include "lords/cuda/qmm/qmm_launch.h"

namespace lords::cuda::qmm {

template <class T, int BITS, bool LOWRANK, int RC, int WM, int WN, int RT, int NT, int KC, bool DEQUANT, int MINB>
void run_fused(QmmParams p, cudaStream_t stream, bool allow_split) {
  using Tile = FusedTile<WM, WN, RT, NT, KC>;
  auto kernel = qmm_fused_kernel<T, BITS, LOWRANK, RC, WM, WN, RT, NT, KC, DEQUANT, MINB>;
  // Per instantiation, once: raise the dynamic shared-memory limit to the largest configuration and
  // read the occupancy the split-K choice needs (no driver queries on the per-call path).
  static int per_sm = [&] {
    const size_t most = Tile::smem_bytes(LOWRANK, DEQUANT, 16 * RC, 2, sizeof(T));
    LORDS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(most)));
    int n = 0;
    LORDS_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, Tile::kThreads, most));
    return std::max(n, 1);
  }();
  static const int sms = device_props().sm_count;
  const int64_t rows = p.row_end - p.row_begin;
  const int64_t gx = (rows + Tile::kRows - 1) / Tile::kRows;
  const int64_t gy = DEQUANT ? 1 : (p.M + Tile::kTokens - 1) / Tile::kTokens;
  const int stages = int((p.Kp + KC - 1) / KC);
  int splits = 1;
  if (allow_split) {
    // About two full waves of blocks, but at least one stage per split.
    const int64_t want = int64_t(per_sm) * sms * 2;
    splits = int(std::clamp<int64_t>((want + gx * gy - 1) / (gx * gy), 1, stages));
  }
  p.stages_per_split = (stages + splits - 1) / splits;
  splits = (stages + p.stages_per_split - 1) / p.stages_per_split;
  p.nbuf = p.stages_per_split > 1 ? 2 : 1;
  p.atomic = splits > 1 && !DEQUANT;  // dequantize splits write disjoint columns
  const size_t smem = Tile::smem_bytes(LOWRANK, DEQUANT, p.rp, p.nbuf, sizeof(T));
  if (p.atomic) LORDS_CUDA_CHECK(cudaMemsetAsync(p.Y, 0, size_t(p.M) * p.N * sizeof(float), stream));
  kernel<<<dim3(unsigned(gx), unsigned(gy), unsigned(splits)), Tile::kThreads, smem, stream>>>(p);
  LORDS_CUDA_CHECK_LAUNCH();
}

template <class T, int BITS, bool LOWRANK, int RC>
void run_for_m(const QmmParams& p, bool dequant, cudaStream_t stream) {
  if (dequant) run_fused<T, BITS, LOWRANK, RC, 8, 1, 2, 1, 256, true, 2>(p, stream, true);
  else if (p.M <= 8) run_fused<T, BITS, LOWRANK, RC, 8, 1, 2, 1, 256, false, 2>(p, stream, true);
  else if (p.M <= 32) run_fused<T, BITS, LOWRANK, RC, 8, 1, 2, 2, 256, false, 2>(p, stream, true);
  else run_fused<T, BITS, LOWRANK, RC, 2, 2, 2, 8, 64, false, 1>(p, stream, true);
}

template <class T, int BITS>
void run_for_scale(const QmmParams& p, bool dequant, cudaStream_t stream) {
  if (p.rp == 0) run_for_m<T, BITS, false, 1>(p, dequant, stream);
  else if (p.rp <= 32) run_for_m<T, BITS, true, 2>(p, dequant, stream);
  else run_for_m<T, BITS, true, 4>(p, dequant, stream);
}

template <class T>
void dispatch_fused(const QmmParams& p, int bits, bool dequant, cudaStream_t stream) {
  switch (bits) {
    case 2: run_for_scale<T, 2>(p, dequant, stream); break;
    case 3: run_for_scale<T, 3>(p, dequant, stream); break;
    default: run_for_scale<T, 4>(p, dequant, stream); break;
  }
}

}  // namespace lords::cuda::qmm
