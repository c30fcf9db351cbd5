// Quantization of one linear weight W (N, K) on the GPU: block-wise RTN and LoRDS (SVD init, then ALS
// or Adam alternating with the Q-step, the best iterate kept), the same algorithms as quant/ on the CPU
// (blockwise.h, lords_init.h, lords_solver.h) with the same settings, so results agree within float
// rounding (codes may differ at exact ties). Then, as engine/linear_quant.cpp does, the stored scale
// is rounded to its storage dtype and a final Q-step is taken against it.
//
// Memory: a GpuQuantizer owns one stream, its cuBLAS handle and every device buffer it needs; buffers
// grow to the largest linear seen and are reused, so a model streamed through one quantizer holds at
// most ~14 bytes per weight of its largest linear (W, S = B A, one scratch (N, K), two code buffers)
// plus O((N + K) r^2) for the normal equations. A quantizer is used by one thread at a time.
//
// The small SVD of the init (an (N, ceil(K/G)) matrix) runs on the CPU (quant::svd_init_from_absmax)
// on block absmaxes computed on the GPU: it is exact and costs milliseconds.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "lords/core/dtype.h"
#include "lords/quant/blockwise.h"
#include "lords/quant/codebook.h"
#include "lords/quant/lords_init.h"
#include "lords/quant/lords_solver.h"

namespace lords::cuda {

namespace detail {
struct QuantWorkspace;  // quantizer_impl.h
}

// What comes back to the host: everything (codes, scales) or only the error sums (benchmarks).
enum class Fetch { Everything, ErrorsOnly };

struct GpuLordsOptions {
  int64_t block = 128;  // G of the SVD init (block absmax)
  int64_t rank = 0;     // r, in [1, min(N, K)] (quant::parity_rank for the parity budget)
  quant::SolverKind solver = quant::SolverKind::Als;
  int steps = 20;       // ALS sweeps or Adam steps (ignored for SolverKind::None)
  float lr = 1e-3f;     // Adam
  DType scale_dtype = DType::F16;  // storage rounding of B and A before the final Q-step (F32: none)
  Fetch fetch = Fetch::Everything;
};

struct GpuLordsResult {
  quant::LowRankScale scale;    // best B (N, r), A (r, K), rounded to scale_dtype; empty with ErrorsOnly
  std::vector<uint8_t> codes;   // (N, K) final codes against the rounded scale; empty with ErrorsOnly
  double w_sq = 0;              // ||W||^2
  double err_sq = 0;            // ||W - W_hat||^2 of what is stored
  double init_objective = 0;    // f at the SVD init (after its Q-step)
  double best_objective = 0;    // f at the returned iterate (before storage rounding)
  int best_step = 0;            // 0 = the initialization
  std::vector<double> history;  // f after each Q-step, history[0] = init
  double svd_rel_err = 0;       // ||S - B A|| / ||S|| of the init
};

struct GpuRtnResult {
  quant::BlockwiseQuant q;  // codes and rounded block scales; empty with ErrorsOnly
  double w_sq = 0, err_sq = 0;
};

class GpuQuantizer {
 public:
  GpuQuantizer();  // needs a GPU (throws Error{Unsupported} without one)
  ~GpuQuantizer();
  GpuQuantizer(const GpuQuantizer&) = delete;
  GpuQuantizer& operator=(const GpuQuantizer&) = delete;

  // W: (N, K) row-major in device memory, ready on this quantizer's stream (write it there, or
  // synchronize first). Throws Error{Usage} on a bad shape or rank, Error{Unsupported} on a rank whose
  // normal equations do not fit the device's shared memory, Error{Cuda} on a CUDA failure.
  GpuLordsResult lords(const float* W, int64_t N, int64_t K, const quant::Codebook& cb, const GpuLordsOptions& opt);
  GpuRtnResult rtn(const float* W, int64_t N, int64_t K, int64_t G, const quant::Codebook& cb, DType scale_dtype,
                   Fetch fetch = Fetch::Everything);

  // The same for a host W: uploaded into the quantizer's own buffer first.
  GpuLordsResult lords_host(const float* W, int64_t N, int64_t K, const quant::Codebook& cb,
                            const GpuLordsOptions& opt);
  GpuRtnResult rtn_host(const float* W, int64_t N, int64_t K, int64_t G, const quant::Codebook& cb,
                        DType scale_dtype, Fetch fetch = Fetch::Everything);

  // A device buffer of n floats owned by the quantizer (grown as needed; the one lords_host uploads
  // into), for callers that produce W on the GPU themselves.
  float* weight_buffer(int64_t n);
  cudaStream_t stream() const;
  // Device memory held now, in bytes.
  int64_t device_bytes() const;

 private:
  std::unique_ptr<detail::QuantWorkspace> ws_;
};

}  // namespace lords::cuda
