// Dequantization of W_hat rows into a dense (rows, K) matrix of the activation type, from the same
// fragment reconstruction as the fused kernel (so the large-M cuBLAS path and the fused path compute
// the same W_hat). Block: 4 warps, one row tile each, walking 16 groups (1024 k) with the A^T rows
// of each group staged in shared memory.
#include <type_traits>

#include "lords/cuda/cuda_check.h"
#include "lords/cuda/qmm/qmm_device.cuh"
#include "lords/cuda/qmm/qmm_launch.h"

namespace lords::cuda::qmm {
namespace {

constexpr int kWarps = 4;
constexpr int kGroupsPerBlock = 16;

template <class T>
__device__ __forceinline__ void store_pair(T* W, int64_t K, int64_t r, int64_t k, int64_t rows, uint32_t v) {
  using T2 = typename Act<T>::T2;
  if (r >= rows || k >= K) return;
  const T2 pr = from_u32<T2>(v);
  if (k + 1 < K && (K % 2 == 0)) {
    *reinterpret_cast<T2*>(W + r * K + k) = pr;
  } else {
    W[r * K + k] = pr.x;
    if (k + 1 < K) W[r * K + k + 1] = pr.y;
  }
}

template <class T, int BITS, bool LOWRANK>
__global__ void __launch_bounds__(kWarps * 32) dequantize_kernel(const QmmParams p, int64_t rows) {
  extern __shared__ uint4 smem_raw[];
  uint32_t* lut = reinterpret_cast<uint32_t*>(smem_raw);
  T* ats = reinterpret_cast<T*>(lut + kLutPairs<BITS> * 32);
  const int at_stride = p.rp + 8;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  build_lut<T, BITS>(lut, p.levels, tid, kWarps * 32);

  // Row tiles are counted from row_begin (a multiple of 16).
  const int64_t rt = p.row_begin / 16 + int64_t(blockIdx.x) * kWarps + warp;
  const bool valid = rt * 16 < p.row_begin + rows && rt * 16 < p.Np;
  const int64_t groups_total = p.Kp / 64;
  const int64_t g0 = int64_t(blockIdx.y) * kGroupsPerBlock;

  uint32_t bf[1][kMaxRankChunks][4];
  if constexpr (LOWRANK) {
    if (valid) load_b_frags<T>(bf[0], static_cast<const T*>(p.B), rt * 16, p.rp, lane);
    else
      for (int c = 0; c < kMaxRankChunks; ++c) bf[0][c][0] = bf[0][c][1] = bf[0][c][2] = bf[0][c][3] = 0;
  }
  T* W = static_cast<T*>(p.W);
  const int g = lane >> 2, t = lane & 3;
  for (int gi = 0; gi < kGroupsPerBlock && g0 + gi < groups_total; ++gi) {
    const int64_t grp = g0 + gi;
    if constexpr (LOWRANK) {
      __syncthreads();
      const int chunks_per_row = p.rp / 8;
      const T* AT = static_cast<const T*>(p.AT);
      for (int i = tid; i < 64 * chunks_per_row; i += kWarps * 32) {
        const int kr = i / chunks_per_row, c8 = (i % chunks_per_row) * 8;
        *reinterpret_cast<uint4*>(ats + kr * at_stride + c8) =
            *reinterpret_cast<const uint4*>(AT + (grp * 64 + kr) * p.rp + c8);
      }
    }
    __syncthreads();
    GroupCodes cw{{0, 0, 0, 0}};
    if (valid) load_group<BITS>(cw, p.codes + (rt * groups_total + grp) * BITS * 128, lane);
    auto step = [&](auto S_) {
      constexpr int S = decltype(S_)::value;
      uint32_t lev[1][4], w[1][4];
      level_pairs<BITS, S>(lev[0], cw, lut, lane);
      if constexpr (LOWRANK) {
        lowrank_w_frags<T, 1>(w, lev, bf, ats + S * 16 * at_stride, at_stride, p.rp, lane);
      } else {
        if (!valid) return;
        block_w_frag<T>(w[0], lev[0], static_cast<const T*>(p.scales), rt * 16, p.nblocks, (grp * 64 + S * 16) / p.G,
                        lane);
      }
      if (!valid) return;
      const int64_t r = rt * 16 + g - p.row_begin, k = grp * 64 + S * 16 + 2 * t;
      store_pair<T>(W, p.K, r, k, rows, w[0][0]);
      store_pair<T>(W, p.K, r + 8, k, rows, w[0][1]);
      store_pair<T>(W, p.K, r, k + 8, rows, w[0][2]);
      store_pair<T>(W, p.K, r + 8, k + 8, rows, w[0][3]);
    };
    step(std::integral_constant<int, 0>{});
    step(std::integral_constant<int, 1>{});
    step(std::integral_constant<int, 2>{});
    step(std::integral_constant<int, 3>{});
  }
}

template <class T, int BITS, bool LOWRANK>
void run(QmmParams p, int64_t rows, cudaStream_t stream) {
  auto kernel = dequantize_kernel<T, BITS, LOWRANK>;
  const size_t smem = size_t(kLutPairs<BITS>) * 32 * 4 + (LOWRANK ? size_t(64) * (p.rp + 8) * sizeof(T) : 0);
  static bool raised = false;
  if (!raised) {
    LORDS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          int(size_t(kLutPairs<BITS>) * 128 + 64 * 72 * sizeof(T))));
    raised = true;
  }
  const int64_t tiles = (rows + 15) / 16;
  const int64_t gx = (tiles + kWarps - 1) / kWarps;
  const int64_t gy = (p.Kp / 64 + kGroupsPerBlock - 1) / kGroupsPerBlock;
  dequantize_kernel<T, BITS, LOWRANK><<<dim3(unsigned(gx), unsigned(gy)), kWarps * 32, smem, stream>>>(p, rows);
  LORDS_CUDA_CHECK_LAUNCH();
}

template <class T>
void dispatch(const QmmParams& p, int64_t rows, const GpuQWeight::View& v, cudaStream_t stream) {
  const bool lr = v.kind == ops::QScaleKind::LowRank;
  switch (v.bits) {
    case 2: lr ? run<T, 2, true>(p, rows, stream) : run<T, 2, false>(p, rows, stream); break;
    case 3: lr ? run<T, 3, true>(p, rows, stream) : run<T, 3, false>(p, rows, stream); break;
    default: lr ? run<T, 4, true>(p, rows, stream) : run<T, 4, false>(p, rows, stream); break;
  }
}

}  // namespace

void launch_dequantize(QmmParams p, int64_t rows, const GpuQWeight::View& v, ActType act, cudaStream_t stream) {
  if (act == ActType::F16) dispatch<__half>(p, rows, v, stream);
  else dispatch<__nv_bfloat16>(p, rows, v, stream);
}

}  // namespace lords::cuda::qmm
