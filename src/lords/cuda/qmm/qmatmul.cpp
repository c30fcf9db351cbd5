// qmatmul dispatch. Fused kernels below dequant_gemm_min_tokens() tokens; from there on, slabs of W_hat
// are dequantized into a reused buffer on a side stream while cuBLAS multiplies the previous slab on
// the caller's stream (the dequantization is memory-bound, the GEMM compute-bound, so they overlap).
#include <cublas_v2.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <cstdlib>

#include "lords/core/error.h"
#include "lords/cuda/cuda_check.h"
#include "lords/cuda/device.h"
#include "lords/cuda/qmatmul.h"
#include "lords/cuda/qmm/qmm_launch.h"

namespace lords::cuda {
namespace {

// Measured crossovers on the H100 (docs/BENCHMARKS.md 7.1d, bench-kernels): below them the fused
// kernel wins. The Hopper prefill kernel (qmm_wgmma.cuh): low-rank scales below 4096 tokens (at 2048
// it is ahead on all four Llama-3-8B shapes, at 4096 behind on three), block scales below 1024 (at
// 1024 behind on all four shapes). The mma.sync kernel: below 128.
constexpr int64_t kDequantGemmMinTokensHopperLowRank = 4096;
constexpr int64_t kDequantGemmMinTokensHopperBlock = 1024;
constexpr int64_t kDequantGemmMinTokens = 128;

// A Hopper kernel runs where the device is sm_90 (the build targets sm_90a) unless its switch
// `off_switch` is set to 0, which keeps the mma.sync kernel (for comparing the two).
bool hopper_kernel_on(const char* off_switch) {
  const char* e = std::getenv(off_switch);
  return device_props().cc_major == 9 && !(e && e[0] == '0');
}
// The prefill kernel (qmm_wgmma.cuh) and the single-token kernel for low-rank scales (qmm_gemv_wgmma.cuh).
bool hopper_prefill() {
  static const bool on = hopper_kernel_on("LORDS_QMM_WGMMA");
  return on;
}
bool hopper_one_token() {
  static const bool on = hopper_kernel_on("LORDS_QMM_GEMV_WGMMA");
  return on;
}

// LORDS_QMM_CROSSOVER=N moves the crossover of every kind to N tokens (for measuring it).
int64_t dequant_gemm_min_tokens(const GpuQWeight& w) {
  static const int64_t forced = [] {
    const char* e = std::getenv("LORDS_QMM_CROSSOVER");
    return e ? std::max<int64_t>(0, std::atoll(e)) : 0;
  }();
  if (forced > 0) return forced;
  if (!hopper_prefill()) return kDequantGemmMinTokens;
  return w.kind() == ops::QScaleKind::LowRank ? kDequantGemmMinTokensHopperLowRank : kDequantGemmMinTokensHopperBlock;
}
constexpr size_t kSlabBytes = size_t(64) << 20;  // enough blocks per slab to fill the GPU

// What Auto means for M tokens: the dequantize + cuBLAS path from the crossover on, if there is a
// workspace for its slabs.
QmmPath resolve_path(QmmPath path, int64_t M, const GpuQWeight& w, bool has_workspace) {
  if (path != QmmPath::Auto) return path;
  return M >= dequant_gemm_min_tokens(w) && has_workspace ? QmmPath::DequantGemm : QmmPath::Fused;
}

cudaDataType_t cuda_type(ActType a) { return a == ActType::F16 ? CUDA_R_16F : CUDA_R_16BF; }

void dequant_gemm(float* Y, const void* X, int64_t M, const GpuQWeight& w, cudaStream_t stream, QmmWorkspace& ws) {
  const GpuQWeight::View v = w.view();
  qmm::QmmParams p = qmm::params_for(v);
  const int64_t K = w.K(), N = w.N();
  const int64_t slab_rows = std::max<int64_t>(16, int64_t(kSlabBytes / (2 * size_t(K))) / 16 * 16);
  const size_t slab_bytes = size_t(slab_rows) * K * 2;
  auto* handle = static_cast<cublasHandle_t>(ws.cublas());
  LORDS_CUBLAS_CHECK(cublasSetStream(handle, stream));
  cudaStream_t side = ws.side_stream();
  // The side stream must see everything the caller queued before (W's upload, X).
  LORDS_CUDA_CHECK(cudaEventRecord(ws.event(2), stream));
  LORDS_CUDA_CHECK(cudaStreamWaitEvent(side, ws.event(2)));
  const float alpha = 1.f, beta = 0.f;
  int i = 0;
  for (int64_t n0 = 0; n0 < N; n0 += slab_rows, ++i) {
    const int b = i & 1;
    const int64_t rows = std::min(slab_rows, N - n0);
    void* slab = ws.slab(b, slab_bytes);
    if (i >= 2) LORDS_CUDA_CHECK(cudaStreamWaitEvent(side, ws.event(b)));  // GEMM of slab i-2 done
    p.W = slab;
    p.row_begin = n0;
    p.row_end = std::min(n0 + (rows + 15) / 16 * 16, v.Np);
    p.M = rows;
    qmm::launch_fused(p, v.bits, w.act(), true, side);
    LORDS_CUDA_CHECK(cudaEventRecord(ws.event(2 + b), side));
    LORDS_CUDA_CHECK(cudaStreamWaitEvent(stream, ws.event(2 + b)));
    LORDS_CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, int(rows), int(M), int(K), &alpha, slab,
                                    cuda_type(w.act()), int(K), X, cuda_type(w.act()), int(K), &beta, Y + n0,
                                    CUDA_R_32F, int(N), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    LORDS_CUDA_CHECK(cudaEventRecord(ws.event(b), stream));
  }
}

}  // namespace

int64_t qmatmul_dequant_gemm_min_tokens(const GpuQWeight& w) { return dequant_gemm_min_tokens(w); }

namespace qmm {
FusedKernel fused_kernel_for(const QmmParams& p) {
  // LORDS_QMM_GEMV=0 sends single tokens to the decode kernel instead (for comparing the two).
  static const bool one_token = [] {
    const char* e = std::getenv("LORDS_QMM_GEMV");
    return !(e && e[0] == '0');
  }();
  const bool lowrank = p.rp > 0;
  if (p.M == 1 && lowrank && one_token && hopper_one_token()) return FusedKernel::OneTokenWgmma;
  if (p.M == 1 && (lowrank || p.G % 64 == 0) && one_token) return FusedKernel::OneToken;
  if (p.M <= 16) return FusedKernel::Decode;
  // TMA brings X to the Hopper kernel: it needs X rows 16-byte aligned (x_vec).
  return hopper_prefill() && p.x_vec ? FusedKernel::Wgmma : FusedKernel::Fused;
}

const char* fused_kernel_name(FusedKernel k) {
  switch (k) {
    case FusedKernel::OneToken: return "one-token";
    case FusedKernel::OneTokenWgmma: return "one-token-wgmma";
    case FusedKernel::Decode: return "decode";
    case FusedKernel::Wgmma: return "wgmma";
    default: return "fused";
  }
}

CUtensorMap tensor_map_2d(const void* data, int64_t inner, int64_t outer, ActType act, int box_inner, int box_outer) {
  using Encode = PFN_cuTensorMapEncodeTiled_v12000;
  static const Encode encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult q{};
    LORDS_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q));
    LORDS_CHECK(fn && q == cudaDriverEntryPointSuccess, ErrorKind::Cuda,
                "[qmatmul gpu] the driver has no cuTensorMapEncodeTiled (TMA)");
    return reinterpret_cast<Encode>(fn);
  }();
  // The swizzle spans the box's rows (box_inner 16-bit elements: 128, 64 or 32 bytes).
  LORDS_CHECK(box_inner == 64 || box_inner == 32 || box_inner == 16, ErrorKind::Usage,
              "[qmatmul gpu] a TMA box of {} elements per row (64, 32 or 16)", box_inner);
  const CUtensorMapSwizzle swizzle = box_inner == 64   ? CU_TENSOR_MAP_SWIZZLE_128B
                                     : box_inner == 32 ? CU_TENSOR_MAP_SWIZZLE_64B
                                                       : CU_TENSOR_MAP_SWIZZLE_32B;
  CUtensorMap map;
  const cuuint64_t dims[2] = {cuuint64_t(inner), cuuint64_t(outer)};
  const cuuint64_t strides[1] = {cuuint64_t(inner) * 2};
  const cuuint32_t box[2] = {cuuint32_t(box_inner), cuuint32_t(box_outer)};
  const cuuint32_t elem_strides[2] = {1, 1};
  const CUresult r = encode(&map, act == ActType::F16 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16,
                            2, const_cast<void*>(data), dims, strides, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                            swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  LORDS_CHECK(r == CUDA_SUCCESS, ErrorKind::Cuda, "[qmatmul gpu] cuTensorMapEncodeTiled failed ({}) for a ({}, {}) tensor",
              int(r), outer, inner);
  return map;
}

QmmParams params_for(const GpuQWeight::View& v) {
  QmmParams p{};
  p.codes = reinterpret_cast<const uint8_t*>(v.codes);
  // fragment_layout.h: groups of a row tile are consecutive, row tiles follow each other
  p.code_group_stride = int64_t(v.bits) * 128;
  p.code_rt_stride = (v.Kp / 64) * p.code_group_stride;
  p.B = v.B;
  p.AT = v.AT;
  p.scales = v.scales;
  p.N = v.N, p.K = v.K, p.Np = v.Np, p.Kp = v.Kp;
  p.rp = v.rp;
  p.r = v.r;
  p.G = v.G > 0 ? v.G : 16;
  p.row_begin = 0;
  p.row_end = v.Np;
  p.nblocks = v.G > 0 ? (v.Kp + v.G - 1) / v.G : 0;
  for (int i = 0; i < 16; ++i) p.levels[i] = v.levels[i];
  return p;
}
}  // namespace qmm

QmmWorkspace::~QmmWorkspace() {
  if (cublas_) cublasDestroy(static_cast<cublasHandle_t>(cublas_));
  for (auto& e : events_)
    if (e) cudaEventDestroy(e);
  if (side_) cudaStreamDestroy(side_);
}

void* QmmWorkspace::slab(int i, size_t bytes) {
  slab_[i].reserve(bytes);
  return slab_[i].data();
}

void* QmmWorkspace::cublas() {
  if (!cublas_) {
    cublasHandle_t h;
    LORDS_CUBLAS_CHECK(cublasCreate(&h));
    cublas_ = h;
  }
  return cublas_;
}

int* QmmWorkspace::flags(cudaStream_t stream) {
  if (flags_.empty()) {
    // One flag per tile: stream-K shares out at most 1.5 rounds of tiles, of at most two blocks per SM.
    flags_ = DeviceBuffer<int>(size_t(4) * size_t(device_props().sm_count));
    LORDS_CUDA_CHECK(cudaMemsetAsync(flags_.data(), 0, flags_.bytes(), stream));
  }
  return flags_.data();
}

cudaStream_t QmmWorkspace::side_stream() {
  if (!side_) LORDS_CUDA_CHECK(cudaStreamCreateWithFlags(&side_, cudaStreamNonBlocking));
  return side_;
}

cudaEvent_t QmmWorkspace::event(int i) {
  if (!events_[i]) LORDS_CUDA_CHECK(cudaEventCreateWithFlags(&events_[i], cudaEventDisableTiming));
  return events_[i];
}

void qmatmul(float* Y, const void* X, int64_t M, const GpuQWeight& w, cudaStream_t stream, QmmWorkspace* ws,
             QmmPath path) {
  LORDS_CHECK(M >= 1, ErrorKind::BadShape, "[qmatmul gpu] M (tokens) must be >= 1, got {}", M);
  LORDS_CHECK(w.N() > 0, ErrorKind::BadShape, "[qmatmul gpu] empty weight");
  // grid.y of the fused kernels counts token tiles of at most 8
  LORDS_CHECK(M <= 65535 * 8, ErrorKind::Unsupported, "[qmatmul gpu] {} tokens in one call is too many", M);
  path = resolve_path(path, M, w, ws != nullptr);
  if (path == QmmPath::DequantGemm) {
    LORDS_CHECK(ws, ErrorKind::Usage, "[qmatmul gpu] the dequantize+GEMM path needs a workspace");
    dequant_gemm(Y, X, M, w, stream, *ws);
    return;
  }
  const GpuQWeight::View v = w.view();
  qmm::QmmParams p = qmm::params_for(v);
  p.X = X;
  p.Y = Y;
  p.M = M;
  p.x_vec = (w.K() % 8 == 0) && (reinterpret_cast<uintptr_t>(X) % 16 == 0);
  if (ws && M > 16) {
    p.sk_flags = ws->flags(stream);
    p.sk_flag_count = ws->flag_count();
  }
  qmm::launch_fused(p, v.bits, w.act(), false, stream);
}

const char* qmatmul_kernel_name(int64_t M, const GpuQWeight& w, QmmPath path) {
  if (resolve_path(path, M, w, true) == QmmPath::DequantGemm) return "dequant+cublas";
  qmm::QmmParams p = qmm::params_for(w.view());
  p.M = M;
  p.x_vec = w.K() % 8 == 0;  // for an aligned X
  return qmm::fused_kernel_name(qmm::fused_kernel_for(p));
}

void dequantize(void* W, const GpuQWeight& w, int64_t n0, int64_t rows, cudaStream_t stream) {
  LORDS_CHECK(n0 % 16 == 0 && n0 >= 0 && rows >= 1 && n0 + rows <= w.N(), ErrorKind::BadShape,
              "[dequantize gpu] rows [{}, {}) of {} (start must be a multiple of 16)", n0, n0 + rows, w.N());
  const GpuQWeight::View v = w.view();
  qmm::QmmParams p = qmm::params_for(v);
  p.W = W;
  p.row_begin = n0;
  p.row_end = std::min(n0 + (rows + 15) / 16 * 16, v.Np);
  p.M = rows;
  qmm::launch_fused(p, v.bits, w.act(), true, stream);
}

}  // namespace lords::cuda
