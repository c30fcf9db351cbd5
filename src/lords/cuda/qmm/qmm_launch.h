// Host-side launchers of the qmatmul kernels (defined in .cu files, called by qmatmul.cpp).
#pragma once

#include <cuda_runtime.h>

#include "lords/cuda/qmatmul.h"
#include "lords/cuda/qmm/qmm_params.h"

namespace lords::cuda::qmm {

// Fills the weight part of QmmParams from a GpuQWeight view.
QmmParams params_for(const GpuQWeight::View& v);

// Fused kernel for p.M tokens (config chosen by M); zeroes Y first when it splits K.
void launch_fused(QmmParams p, const GpuQWeight::View& v, ActType act, cudaStream_t stream);
// W_hat rows [p.row_begin, p.row_begin + rows) into p.W (rows, K) in the activation type.
void launch_dequantize(QmmParams p, int64_t rows, const GpuQWeight::View& v, ActType act, cudaStream_t stream);

}  // namespace lords::cuda::qmm
