// GpuQuantizer plumbing and block-wise RTN on the GPU (the LoRDS solver is gpu_lords.cpp).
#include "lords/cuda/quant/gpu_quantizer.h"

#include "lords/core/error.h"
#include "lords/cuda/device.h"
#include "lords/cuda/quant/quantizer_impl.h"

namespace lords::cuda {

int64_t detail::QuantWorkspace::bytes() const {
  size_t b = W.bytes() + S.bytes() + Y.bytes() + codes[0].bytes() + codes[1].bytes() + P.bytes() + Gp.bytes() +
             R.bytes() + pairs.bytes() + absmax.bytes() + sums.bytes();
  for (const DeviceBuffer<float>* v : {&B, &A, &best_B, &best_A, &gB, &mB, &vB, &gA, &mA, &vA}) b += v->bytes();
  return static_cast<int64_t>(b);
}

namespace {

// The GPU constructor below runs only once require_gpu passed, so a machine without a GPU gets one
// clear Unsupported error instead of a failing cudaStreamCreate.
std::unique_ptr<detail::QuantWorkspace> make_workspace() {
  require_gpu("gpu quantizer");
  return std::make_unique<detail::QuantWorkspace>();
}

}  // namespace

GpuQuantizer::GpuQuantizer() : ws_(make_workspace()) {
  // Plain fp32 GEMMs (no TF32): the codes are chosen by comparing W / S with the codebook's midpoints,
  // and TF32's 10-bit mantissa in S would move many of them away from the CPU's.
  LORDS_CUBLAS_CHECK(cublasSetMathMode(ws_->blas.cublas(), CUBLAS_DEFAULT_MATH));
}

GpuQuantizer::~GpuQuantizer() = default;

cudaStream_t GpuQuantizer::stream() const { return ws_->st(); }

int64_t GpuQuantizer::device_bytes() const { return ws_->bytes(); }

float* GpuQuantizer::weight_buffer(int64_t n) {
  LORDS_CHECK(n > 0, ErrorKind::Usage, "[gpu quantizer] weight buffer of {} floats", n);
  ws_->W.reserve(static_cast<size_t>(n));
  return ws_->W.data();
}

GpuRtnResult GpuQuantizer::rtn(const float* W, int64_t N, int64_t K, int64_t G, const quant::Codebook& cb,
                               DType scale_dtype, Fetch fetch) {
  LORDS_CHECK(N > 0 && K > 0 && G > 0, ErrorKind::Usage, "[rtn gpu] bad shape ({}, {}) or block {}", N, K, G);
  LORDS_CHECK(scale_dtype == DType::F32 || scale_dtype == DType::F16 || scale_dtype == DType::BF16,
              ErrorKind::Usage, "[rtn gpu] scale dtype {} is not f32, f16 or bf16", dtype_name(scale_dtype));
  detail::QuantWorkspace& w = *ws_;
  const GpuCodebook gcb = gpu_codebook(cb);
  const int64_t NK = N * K, ns = N * quant::num_blocks(K, G);
  w.absmax.reserve(static_cast<size_t>(ns));
  w.codes[0].reserve(static_cast<size_t>(NK));
  // Scales rounded through the storage dtype before any code is chosen, as quantize_blockwise.
  qk::block_absmax(w.absmax.data(), W, N, K, G, scale_dtype, w.st());
  qk::rtn_codes(w.codes[0].data(), W, w.absmax.data(), N, K, G, gcb, w.sum_scratch(), w.st());
  double sums[2];
  w.read_sums(sums);
  GpuRtnResult res;
  res.err_sq = sums[0];
  res.w_sq = sums[1];
  if (fetch == Fetch::Everything) {
    res.q.N = N;
    res.q.K = K;
    res.q.G = G;
    res.q.scales.resize(static_cast<size_t>(ns));
    res.q.codes.resize(static_cast<size_t>(NK));
    w.to_host(res.q.scales.data(), w.absmax.data(), ns);
    w.to_host(res.q.codes.data(), w.codes[0].data(), NK);
  }
  return res;
}

GpuLordsResult GpuQuantizer::lords_host(const float* W, int64_t N, int64_t K, const quant::Codebook& cb,
                                        const GpuLordsOptions& opt) {
  LORDS_CHECK(N > 0 && K > 0, ErrorKind::Usage, "[lords gpu] bad shape ({}, {})", N, K);
  float* dW = weight_buffer(N * K);
  ws_->to_device(dW, W, N * K);
  return lords(dW, N, K, cb, opt);
}

GpuRtnResult GpuQuantizer::rtn_host(const float* W, int64_t N, int64_t K, int64_t G, const quant::Codebook& cb,
                                    DType scale_dtype, Fetch fetch) {
  LORDS_CHECK(N > 0 && K > 0, ErrorKind::Usage, "[rtn gpu] bad shape ({}, {})", N, K);
  float* dW = weight_buffer(N * K);
  ws_->to_device(dW, W, N * K);
  return rtn(dW, N, K, G, cb, scale_dtype, fetch);
}

}  // namespace lords::cuda
