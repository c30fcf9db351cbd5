// Instantiations and launch configuration of the fused qmatmul kernel.
//   decode (M <= 8):  4 warps x 2 row tiles (128 rows) x 8 tokens, K stages of 256, split-K
//   decode (M <= 16): same with 16 tokens
//   prefill:          2x2 warps, each 2 row tiles x 64 tokens (64 rows x 128 tokens), K stages of 64
#include <algorithm>

#include "lords/cuda/cuda_check.h"
#include "lords/cuda/device.h"
#include "lords/cuda/qmm/qmm_fused.cuh"
#include "lords/cuda/qmm/qmm_launch.h"

namespace lords::cuda::qmm {
namespace {

template <class T, int BITS, bool LOWRANK, int WM, int WN, int RT, int NT, int KC>
void run(QmmParams p, cudaStream_t stream, bool allow_split) {
  using Tile = FusedTile<WM, WN, RT, NT, KC>;
  auto kernel = qmm_fused_kernel<T, BITS, LOWRANK, WM, WN, RT, NT, KC>;
  const size_t smem = Tile::template smem_bytes<BITS>(LOWRANK, p.rp, sizeof(T));
  // Raise the dynamic shared memory limit once per instantiation (the largest rank needs the most).
  static size_t raised = 0;
  if (smem > raised) {
    LORDS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          int(Tile::template smem_bytes<BITS>(LOWRANK, 64, sizeof(T)))));
    raised = Tile::template smem_bytes<BITS>(LOWRANK, 64, sizeof(T));
  }
  const int64_t gx = (p.Np + Tile::kRows - 1) / Tile::kRows;
  const int64_t gy = (p.M + Tile::kTokens - 1) / Tile::kTokens;
  const int stages = int((p.Kp + KC - 1) / KC);
  int splits = 1;
  if (allow_split) {
    // Enough blocks for about four waves, but at least one stage per split.
    int per_sm = 0;
    LORDS_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, Tile::kThreads, smem));
    const int64_t want = int64_t(std::max(per_sm, 1)) * device_props().sm_count * 4;
    splits = int(std::clamp<int64_t>((want + gx * gy - 1) / (gx * gy), 1, stages));
  }
  p.stages_per_split = (stages + splits - 1) / splits;
  splits = (stages + p.stages_per_split - 1) / p.stages_per_split;
  p.atomic = splits > 1;
  if (p.atomic) LORDS_CUDA_CHECK(cudaMemsetAsync(p.Y, 0, size_t(p.M) * p.N * sizeof(float), stream));
  kernel<<<dim3(unsigned(gx), unsigned(gy), unsigned(splits)), Tile::kThreads, smem, stream>>>(p);
  LORDS_CUDA_CHECK_LAUNCH();
}

template <class T, int BITS, bool LOWRANK>
void run_for_m(const QmmParams& p, cudaStream_t stream) {
  if (p.M <= 8) run<T, BITS, LOWRANK, 4, 1, 2, 1, 256>(p, stream, true);
  else if (p.M <= 32) run<T, BITS, LOWRANK, 4, 1, 2, 2, 256>(p, stream, true);
  else run<T, BITS, LOWRANK, 2, 2, 2, 8, 64>(p, stream, true);
}

template <class T>
void dispatch(const QmmParams& p, const GpuQWeight::View& v, cudaStream_t stream) {
  const bool lr = v.kind == ops::QScaleKind::LowRank;
  switch (v.bits) {
    case 2: lr ? run_for_m<T, 2, true>(p, stream) : run_for_m<T, 2, false>(p, stream); break;
    case 3: lr ? run_for_m<T, 3, true>(p, stream) : run_for_m<T, 3, false>(p, stream); break;
    default: lr ? run_for_m<T, 4, true>(p, stream) : run_for_m<T, 4, false>(p, stream); break;
  }
}

}  // namespace

void launch_fused(QmmParams p, const GpuQWeight::View& v, ActType act, cudaStream_t stream) {
  if (act == ActType::F16) dispatch<__half>(p, v, stream);
  else dispatch<__nv_bfloat16>(p, v, stream);
}

}  // namespace lords::cuda::qmm
