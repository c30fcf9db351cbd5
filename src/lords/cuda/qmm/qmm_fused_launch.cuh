// Launch configurations of the qmatmul kernels, instantiated once per activation type
// (qmm_fused_f16.cu, qmm_fused_bf16.cu, so the two compile in parallel):
//   one token (M = 1): qmm_gemv.cuh, the lookup-GEMM form, persistent blocks of 16 warps per K slice;
//                     on sm_90 (low-rank scales) qmm_gemv_wgmma.cuh, the same on warpgroup MMA
//   decode (M <= 16): qmm_decode.cuh, 8 warps x RT row tiles, 8 or 16 tokens, K sliced to fill the GPU
//   M <= 32: the fused kernel, 8 warps x 2 row tiles (256 rows) x 16 tokens, K stages of 256, split-K
//   prefill:          2x2 warps, each 2 row tiles x 64 tokens (64 rows x 128 tokens), K stages of 64
//   prefill on Hopper: qmm_wgmma.cuh, 2 warpgroups x 64 rows over 64..256 tokens, warpgroup MMA
//   dequantize:       the decode kernel's stream writing W_hat (staged, 128-byte row segments)
#pragma once

#include <algorithm>
#include <cstdlib>
#include <type_traits>
#include <utility>

#include "lords/cuda/cuda_check.h"
#include "lords/cuda/device.h"
#include "lords/cuda/qmm/qmm_decode.cuh"
#include "lords/cuda/qmm/qmm_fused.cuh"
#include "lords/cuda/qmm/qmm_gemv.cuh"
#include "lords/cuda/qmm/qmm_gemv_wgmma.cuh"
#include "lords/cuda/qmm/qmm_launch.h"
#include "lords/cuda/qmm/qmm_wgmma.cuh"

namespace lords::cuda::qmm {

// A tuning switch from the environment (read once by each caller's static): its integer value, or
// `unset` where the variable is not set.
inline int env_int(const char* name, int unset) {
  const char* e = std::getenv(name);
  return e ? std::atoi(e) : unset;
}

// Programmatic dependent launch of the wgmma kernels (launch_maybe_pdl); LORDS_QMM_PDL=0 turns it off
// (measuring).
inline bool pdl_on() {
  static const bool on = env_int("LORDS_QMM_PDL", 1) != 0;
  return on;
}

// Launches kernel(args...), with the programmatic-stream-serialization attribute where `pdl`: the
// kernel may then start before the one before it in the stream ends, and must call
// grid_dependency_wait() (wgmma.cuh) before it touches that kernel's outputs or inputs.
template <class... Params, class... Args>
void launch_maybe_pdl(void (*kernel)(Params...), dim3 grid, int threads, size_t smem, cudaStream_t stream, bool pdl,
                      Args&&... args) {
  if (!pdl) {
    kernel<<<grid, threads, smem, stream>>>(std::forward<Args>(args)...);
    LORDS_CUDA_CHECK_LAUNCH();
    return;
  }
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = dim3(unsigned(threads));
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = &attr;
  cfg.numAttrs = 1;
  LORDS_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
}

template <class T, int BITS, bool LOWRANK, int RC, int WM, int WN, int RT, int NT, int KC, int MINB>
void run_fused(QmmParams p, cudaStream_t stream, bool allow_split) {
  using Tile = FusedTile<WM, WN, RT, NT, KC>;
  auto kernel = qmm_fused_kernel<T, BITS, LOWRANK, RC, WM, WN, RT, NT, KC, MINB>;
  // Per instantiation, once: raise the dynamic shared-memory limit to the largest configuration and
  // read the occupancy the split-K choice needs (no driver queries on the per-call path).
  static int per_sm = [&] {
    const size_t most = Tile::smem_bytes(LOWRANK, 16 * RC, 2, sizeof(T));
    LORDS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(most)));
    int n = 0;
    LORDS_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, Tile::kThreads, most));
    return std::max(n, 1);
  }();
  static const int sms = device_props().sm_count;
  const int64_t rows = p.row_end - p.row_begin;
  const int64_t gx = (rows + Tile::kRows - 1) / Tile::kRows;
  const int64_t gy = (p.M + Tile::kTokens - 1) / Tile::kTokens;
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
  p.atomic = splits > 1;
  const size_t smem = Tile::smem_bytes(LOWRANK, p.rp, p.nbuf, sizeof(T));
  if (p.atomic) LORDS_CUDA_CHECK(cudaMemsetAsync(p.Y, 0, size_t(p.M) * p.N * sizeof(float), stream));
  kernel<<<dim3(unsigned(gx), unsigned(gy), unsigned(splits)), Tile::kThreads, smem, stream>>>(p);
  LORDS_CUDA_CHECK_LAUNCH();
}

// K slices for the decode kernel: the fewest blocks that fill whole waves best (memory-bound: a last
// wave with few blocks leaves bandwidth idle), with at least 4 groups (256 k) per slice.
// LORDS_QMM_DECODE_GROUPS overrides the groups per slice (tuning).
inline int decode_groups_per_split(int64_t row_blocks, int64_t groups, int64_t slots) {
  static const int forced = env_int("LORDS_QMM_DECODE_GROUPS", 0);
  if (forced > 0) return int(std::min<int64_t>(forced, groups));
  int64_t best = groups;
  double best_eff = -1;
  for (int64_t gps = groups; gps >= std::min<int64_t>(4, groups); --gps) {
    const int64_t splits = (groups + gps - 1) / gps;
    const int64_t blocks = row_blocks * splits;
    const int64_t waves = (blocks + slots - 1) / slots;
    const double eff = double(blocks) / double(waves * slots);
    if (eff > best_eff + 0.02) best_eff = eff, best = gps;
  }
  return int(best);
}

template <class T, int BITS, bool LOWRANK, int RC, int RT, int NT, int MINB = 2, bool DEQUANT = false>
void run_decode(QmmParams p, cudaStream_t stream) {
  constexpr int kWarps = 8;
  using Tile = DecodeTile<T, BITS, LOWRANK, RT, NT, kWarps, DEQUANT>;
  auto kernel = qmm_decode_kernel<T, BITS, LOWRANK, RC, RT, NT, kWarps, MINB, DEQUANT>;
  static const int sms = device_props().sm_count;
  static const size_t smem_limit = [&] {
    // Raise the dynamic shared-memory limit once per instantiation, to what MINB blocks per SM allow.
    const size_t most = size_t(device_props().smem_per_block_optin) / MINB - 1024;
    LORDS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(most)));
    return most;
  }();
  const int64_t rows = p.row_end - p.row_begin;
  const int64_t gx = (rows + Tile::kRows - 1) / Tile::kRows;
  const int64_t gz = DEQUANT ? 1 : (p.M + Tile::kTokens - 1) / Tile::kTokens;
  const int64_t groups = p.Kp / 64;
  int gps = decode_groups_per_split(gx * gz, groups, int64_t(sms) * MINB);
  while (gps > 1 && Tile::smem_bytes(gps, p.rp) > smem_limit) --gps;
  p.groups_per_split = gps;
  const int64_t gy = (groups + gps - 1) / gps;
  if (gy > 1 && !DEQUANT) LORDS_CUDA_CHECK(cudaMemsetAsync(p.Y, 0, size_t(p.M) * p.N * sizeof(float), stream));
  kernel<<<dim3(unsigned(gx), unsigned(gy), unsigned(gz)), Tile::kThreads, Tile::smem_bytes(gps, p.rp), stream>>>(p);
  LORDS_CUDA_CHECK_LAUNCH();
}

// K slices and blocks for the single-token kernel: every SM holds one persistent block; a block of
// slice y walks chunks of RT row tiles over groups_per_split groups. The estimate is the busiest
// warp's items (RT tiles x one group each) plus one per chunk (its reduction) and a block's start,
// times the waves of blocks;
// a slice must fit below the pair table (GemvSmem::kSliceRoom). `multiple`: groups per slice must be
// a multiple of it (the warpgroup kernel's register ring).
struct GemvSplit {
  int groups_per_split, splits, blocks_per_split;
};
inline GemvSplit gemv_split(int64_t tiles, int64_t groups, int sms, int rt, int warps, size_t room,
                            size_t (*slice_bytes)(int, int), int rp, int multiple = 1) {
  static const int forced = env_int("LORDS_QMM_GEMV_GROUPS", 0);
  GemvSplit best{multiple, int((groups + multiple - 1) / multiple), 1};
  double best_cost = 1e300;
  const int64_t chunks = (tiles + rt - 1) / rt;
  for (int64_t gps = std::min<int64_t>(groups, 64); gps >= 1; --gps) {
    if (slice_bytes(int(gps), rp) > room || gps % multiple != 0) continue;
    if (forced > 0 && gps != std::min<int64_t>(forced, groups)) continue;
    const int64_t splits = (groups + gps - 1) / gps;
    int64_t bx = std::max<int64_t>(1, sms / splits);
    bx = std::min(bx, (chunks + warps - 1) / warps);
    const int64_t rounds = (chunks + bx * warps - 1) / (bx * warps);
    const int64_t waves = (splits * bx + sms - 1) / sms;  // more slices than SMs: blocks queue
    const double cost = double(waves) * (double(rounds) * double(rt * gps + 1) + 2.0);
    if (cost < best_cost - 1e-9) best_cost = cost, best = GemvSplit{int(gps), int(splits), int(bx)};
  }
  return best;
}

template <class T, int BITS, bool LOWRANK, int JC, int RT, int PF>
void run_gemv(QmmParams p, cudaStream_t stream) {
  constexpr int kWarps = 16;
  using Smem = GemvSmem<T, BITS, LOWRANK>;
  auto kernel = qmm_gemv_kernel<T, BITS, LOWRANK, JC, RT, kWarps, PF>;
  static const int sms = [&] {
    LORDS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(Smem::kBytes)));
    return device_props().sm_count;
  }();
  const int64_t tiles = (p.row_end - p.row_begin + 15) / 16;
  const GemvSplit s = gemv_split(tiles, p.Kp / 64, sms, RT, kWarps, Smem::kSliceRoom, &Smem::slices, p.rp);
  p.groups_per_split = s.groups_per_split;
  if (s.splits > 1) LORDS_CUDA_CHECK(cudaMemsetAsync(p.Y, 0, size_t(p.N) * sizeof(float), stream));
  kernel<<<dim3(unsigned(s.blocks_per_split), unsigned(s.splits)), kWarps * 32, Smem::kBytes, stream>>>(p);
  LORDS_CUDA_CHECK_LAUNCH();
}

// The warpgroup single-token kernel: N = the rank rounded up to 8 columns, chunks of 4 row tiles per
// warpgroup, 4 warpgroups per block, 2 items of codes in registers (measured fastest of 2, 4, 6
// and 8 on the H100: deeper rings cost registers the overlapped MMAs need; docs/BENCHMARKS.md 7.1f).
template <class T, int BITS, int N>
void run_gemv_wg(QmmParams p, cudaStream_t stream) {
  constexpr int kWG = 4, kPF = 2;
  using Smem = GemvWgSmem<T, BITS, N>;
  auto kernel = qmm_gemv_wg_kernel<T, BITS, N, kWG, kPF>;
  static const int sms = [&] {
    LORDS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(Smem::kBytes)));
    return device_props().sm_count;
  }();
  const int64_t tiles = (p.row_end - p.row_begin + 15) / 16;
  const GemvSplit s = gemv_split(tiles, p.Kp / 64, sms, 4, kWG, Smem::kSliceRoom, &Smem::slices, p.rp, kPF);
  p.groups_per_split = s.groups_per_split;
  if (s.splits > 1) LORDS_CUDA_CHECK(cudaMemsetAsync(p.Y, 0, size_t(p.N) * sizeof(float), stream));
  // Programmatic dependent launch where a kernel, not the memset, comes before: the prologue (first
  // codes, A^T, the pair table) overlaps that kernel's end.
  launch_maybe_pdl(kernel, dim3(unsigned(s.blocks_per_split), unsigned(s.splits)), kWG * 128, Smem::kBytes, stream,
                   pdl_on() && s.splits == 1, p);
}

// Tokens per block of the Hopper kernel for M tokens: 256 from 129 tokens on (measured 1.3-1.6x
// faster than 128 at M = 256 and 1024 on gate_up and down: the scale tile and the W_hat rebuild are
// paid once per token block). LORDS_QMM_WGMMA_BN forces 64, 128 or 256 (tuning).
inline int wgmma_tokens(int64_t M) {
  static const int forced = env_int("LORDS_QMM_WGMMA_BN", 0);
  if (forced == 64 || forced == 128 || forced == 256) return forced;
  if (M <= 64) return 64;
  if (M <= 128) return 128;
  return 256;
}

// K is sliced only where row blocks x token blocks fill less than one wave: every slice pays the
// pipeline's fill and an atomic epilogue, so more slices than the idle SMs need cost more than
// the last wave's idle SMs (measured: the decode kernel's wave-efficiency rule made 7 slices of
// 9 k blocks for gate_up at M = 64 and ran 1.3x slower). The kernel is persistent: one block per
// SM walks the tiles.
template <class T, int BITS, bool LOWRANK, int RC, int BN>
void run_wgmma(QmmParams p, cudaStream_t stream) {
  using Tile = WgmmaTile<T, BITS, LOWRANK, RC, BN>;
  auto kernel = qmm_wgmma_kernel<T, BITS, LOWRANK, RC, BN>;
  constexpr ActType act = std::is_same_v<T, __half> ? ActType::F16 : ActType::BF16;
  static const int64_t slots = [&] {
    const int bytes = int(Tile::kSmemBytes);
    LORDS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    int per_sm = 0;
    LORDS_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, Tile::kThreads, bytes));
    return int64_t(std::max(per_sm, 1)) * device_props().sm_count;
  }();
  const int64_t rows = p.row_end - p.row_begin;
  const int64_t gx = (p.M + BN - 1) / BN;
  const int64_t gy = (rows + Tile::kRows - 1) / Tile::kRows;
  const int64_t blocks = p.Kp / 64;
  const int64_t splits = std::clamp<int64_t>(slots / (gx * gy), 1, std::max<int64_t>(1, blocks / 8));
  p.groups_per_split = int((blocks + splits - 1) / splits);
  const int64_t gz = (blocks + p.groups_per_split - 1) / p.groups_per_split;
  p.atomic = gz > 1;
  if (p.atomic) LORDS_CUDA_CHECK(cudaMemsetAsync(p.Y, 0, size_t(p.M) * p.N * sizeof(float), stream));
  // A last round of tiles that leaves at least half the SMs idle (qkv at 1024 tokens: 192 tiles on 132
  // SMs) runs as 2..4 K parts per tile, as many as the idle SMs take and at least 8 k blocks each,
  // adding into Y by atomics; those tiles' rows of Y are zeroed first (every token; full tiles in the
  // same row block overwrite theirs).
  // LORDS_QMM_WGMMA_TAIL=0 turns it off (measuring).
  static const bool tail_on = env_int("LORDS_QMM_WGMMA_TAIL", 1) != 0;
  p.tail_begin = 0, p.tail_split = 1;
  // Odd blocks take their last-round K part first (wgmma_unit); LORDS_QMM_WGMMA_STAGGER=0 turns it off
  // (measuring). Splitting a last round that is more than half full, only to stagger, measured slower.
  static const bool stagger = env_int("LORDS_QMM_WGMMA_STAGGER", 1) != 0;
  p.stagger = stagger;
  int64_t units = gx * gy * gz;
  const int64_t rest = (gx * gy) % slots;
  const bool half_empty_last_round = !p.atomic && gx * gy > slots && rest > 0 && slots / rest >= 2;
  const int64_t parts = rest > 0 ? std::min<int64_t>({4, slots / rest, blocks / 8}) : 1;
  // Where that last round is the second (1-1.5 rounds of tiles) and the caller's workspace has the
  // flags, the tiles are shared out evenly in k blocks instead (stream-K, wgmma_walk).
  // LORDS_QMM_WGMMA_STREAMK=0 keeps the K parts (measuring).
  static const bool streamk_on = env_int("LORDS_QMM_WGMMA_STREAMK", 1) != 0;
  if (!(streamk_on && tail_on && half_empty_last_round && gx * gy / slots == 1 && gx * gy <= p.sk_flag_count))
    p.sk_flags = nullptr;
  if (p.sk_flags) {
    units = slots;  // (the grid: one block per slot, each with at least one tile's work)
  } else if (tail_on && half_empty_last_round && parts >= 2) {
    p.tail_split = int(parts);
    p.tail_begin = gx * gy - rest;
    units = p.tail_begin + parts * rest;
    const int64_t n0 = p.row_begin + (p.tail_begin / gx) * Tile::kRows, n1 = std::min(p.N, p.row_end);
    if (n1 > n0)
      LORDS_CUDA_CHECK(cudaMemset2DAsync(p.Y + n0, size_t(p.N) * sizeof(float), 0, size_t(n1 - n0) * sizeof(float),
                                         size_t(p.M), stream));
  }
  const CUtensorMap xmap = tensor_map_2d(p.X, p.K, p.M, act, 64, BN);
  // A^T (Kp, rp) in boxes of 64 k x the padded rank: ranks beyond rp arrive as zeros.
  const CUtensorMap atmap = LOWRANK ? tensor_map_2d(p.AT, p.rp, p.Kp, act, Tile::kATRowBytes / 2, 64) : xmap;
  const int64_t grid = std::min(units, slots);
  // Programmatic dependent launch where no memset of Y comes before (as in run_gemv_wg).
  launch_maybe_pdl(kernel, dim3(unsigned(grid)), Tile::kThreads, Tile::kSmemBytes, stream,
                   pdl_on() && !p.atomic && p.tail_split <= 1, p, xmap, atmap);
}

template <class T, bool LOWRANK, int RC>
constexpr int kWgmmaMaxTokens = std::is_same_v<T, __nv_bfloat16> && LOWRANK && RC >= 2 ? 128 : 256;

// RC: rank chunks of 16 (exact for the decode and Hopper prefill kernels, which have no run-time rank
// checks; the fused kernel checks at run time and is built for 2 and 4 only).
template <class T, int BITS, bool LOWRANK, int RC>
void run_for_m(const QmmParams& p, bool dequant, cudaStream_t stream) {
  constexpr int RCF = RC <= 2 ? 2 : 4;
  if (dequant) {
    run_decode<T, BITS, LOWRANK, RC, 2, 1, 2, true>(p, stream);
    return;
  }
  switch (fused_kernel_for(p)) {
    case FusedKernel::OneTokenWgmma:
      // N: the rank rounded up to 8 columns; the rank chunk RC (rp = 16 RC) leaves two choices.
      if constexpr (LOWRANK) {
        if (p.r <= 16 * RC - 8) run_gemv_wg<T, BITS, 16 * RC - 8>(p, stream);
        else run_gemv_wg<T, BITS, 16 * RC>(p, stream);
        break;
      }
      [[fallthrough]];  // (fused_kernel_for sends only low-rank scales here)
    case FusedKernel::OneToken:
      // Block scales: one per row and 64-k group. The rank in column tiles of 8 (2 RC - 1 of them
      // where the rank allows).
      if constexpr (!LOWRANK) {
        run_gemv<T, BITS, false, 1, 2, 4>(p, stream);
      } else {
        constexpr int RT = RC <= 2 ? 2 : 1, PF = RC <= 2 ? 3 : 4;
        if (p.r <= 16 * RC - 8) run_gemv<T, BITS, true, 2 * RC - 1, RT, PF>(p, stream);
        else run_gemv<T, BITS, true, 2 * RC, RT, PF>(p, stream);
      }
      break;
    case FusedKernel::Decode:
      // 4 row tiles per warp share each A^T fragment read from shared memory where registers allow.
      if (p.M <= 8) run_decode<T, BITS, LOWRANK, RC, (LOWRANK && RC <= 2 ? 4 : 2), 1>(p, stream);
      else run_decode<T, BITS, LOWRANK, RC, 2, 2>(p, stream);
      break;
    case FusedKernel::Wgmma:
      // Tokens per block: as many as the accumulators allow, fewer where M would leave SMs idle.
      // The rank chunks are exact (no run-time rank checks between the MMAs).
      // bf16 with a rank above 16 stops at 128: its fp32 scale accumulators leave 256 tokens' worth
      // of accumulators too few registers (ptxas would serialize the MMAs).
      switch (std::min(wgmma_tokens(p.M), kWgmmaMaxTokens<T, LOWRANK, RC>)) {
        case 64: run_wgmma<T, BITS, LOWRANK, RC, 64>(p, stream); break;
        case 128: run_wgmma<T, BITS, LOWRANK, RC, 128>(p, stream); break;
        default: run_wgmma<T, BITS, LOWRANK, RC, kWgmmaMaxTokens<T, LOWRANK, RC>>(p, stream); break;
      }
      break;
    case FusedKernel::Fused:
      if (p.M <= 32) run_fused<T, BITS, LOWRANK, RCF, 8, 1, 2, 2, 256, 2>(p, stream, true);
      else run_fused<T, BITS, LOWRANK, RCF, 2, 2, 2, 8, 64, 1>(p, stream, true);
      break;
  }
}

template <class T, int BITS>
void run_for_scale(const QmmParams& p, bool dequant, cudaStream_t stream) {
  if (p.rp == 0) run_for_m<T, BITS, false, 1>(p, dequant, stream);
  else if (p.rp <= 16) run_for_m<T, BITS, true, 1>(p, dequant, stream);
  else if (p.rp <= 32) run_for_m<T, BITS, true, 2>(p, dequant, stream);
  else if (p.rp <= 48) run_for_m<T, BITS, true, 3>(p, dequant, stream);
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
