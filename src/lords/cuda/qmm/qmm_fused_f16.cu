// fp16 instantiations of the fused qmatmul / dequantize kernels.
#include "lords/cuda/qmm/qmm_fused_launch.cuh"

namespace lords::cuda::qmm {
void launch_fused_f16(const QmmParams& p, int bits, bool dequant, cudaStream_t stream) {
  dispatch_fused<__half>(p, bits, dequant, stream);
}
}  // namespace lords::cuda::qmm
