// Host-side entry points of the qmatmul kernels (defined in .cu files, called by qmatmul.cpp).
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include "lords/cuda/qmatmul.h"
#include "lords/cuda/qmm/qmm_params.h"

namespace lords::cuda::qmm {

// The kernel family the Fused path runs for p.M tokens (qmm_fused_launch.cuh dispatches on it; the
// bench names it): one-token (qmm_gemv.cuh; on sm_90 with low-rank scales qmm_gemv_wgmma.cuh), decode
// (qmm_decode.cuh, M <= 16), the Hopper prefill kernel (qmm_wgmma.cuh, sm_90) or the mma.sync fused
// kernel (other GPUs).
enum class FusedKernel { OneToken, OneTokenWgmma, Decode, Wgmma, Fused };
FusedKernel fused_kernel_for(const QmmParams& p);
const char* fused_kernel_name(FusedKernel k);

// TMA map of a row-major (outer, inner) 16-bit tensor in boxes of (box_outer, box_inner), box rows
// of 64, 32 or 16 elements swizzled in the 128-, 64- or 32-byte mode, zero beyond the tensor. Needs
// data 16-byte aligned and inner % 8 == 0 (for X: QmmParams::x_vec).
CUtensorMap tensor_map_2d(const void* data, int64_t inner, int64_t outer, ActType act, int box_inner, int box_outer);

// Fills the weight part of QmmParams from a GpuQWeight view (rows: all of them).
QmmParams params_for(const GpuQWeight::View& v);

// The fused kernel for p.M tokens (configuration chosen by M; zeroes Y first when it splits K), or,
// with dequant, W_hat rows [p.row_begin, p.row_end) into p.W (rows, K) in the activation type.
void launch_fused_f16(const QmmParams& p, int bits, bool dequant, cudaStream_t stream);
void launch_fused_bf16(const QmmParams& p, int bits, bool dequant, cudaStream_t stream);
inline void launch_fused(const QmmParams& p, int bits, ActType act, bool dequant, cudaStream_t stream) {
  if (act == ActType::F16) launch_fused_f16(p, bits, dequant, stream);
  else launch_fused_bf16(p, bits, dequant, stream);
}

}  // namespace lords::cuda::qmm
