// Internal to gpu_quantizer.cpp and gpu_lords.cpp: the workspace a GpuQuantizer owns (its stream, cuBLAS
// handle and grow-only device buffers) and the synchronous copy helpers every step uses.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "lords/cuda/blas_handle.h"
#include "lords/cuda/cuda_check.h"
#include "lords/cuda/device_buffer.h"
#include "lords/cuda/quant/gpu_quantizer.h"
#include "lords/cuda/quant/quant_kernels.h"

namespace lords::cuda {

// An owned non-blocking stream (work on it never waits for the legacy default stream).
class OwnedStream {
 public:
  OwnedStream() { LORDS_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~OwnedStream() {
    if (s_) cudaStreamDestroy(s_);
  }
  OwnedStream(const OwnedStream&) = delete;
  OwnedStream& operator=(const OwnedStream&) = delete;
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

namespace detail {

struct QuantWorkspace {
  OwnedStream stream;
  BlasHandles blas{stream.get()};  // declared after the stream: built from it, destroyed before it

  DeviceBuffer<float> W;                // (N, K) host-input weights (lords_host / rtn_host)
  DeviceBuffer<float> S;                // (N, K) S = B A; ALS: X = level^2
  DeviceBuffer<float> Y;                // (N, K) ALS: Y = level * W; Adam: g = E level
  DeviceBuffer<uint8_t> codes[2];       // (N, K) best iterate's codes and the latest Q-step's
  DeviceBuffer<float> B, A;             // (N, r), (r, K) current iterate
  DeviceBuffer<float> best_B, best_A;   // best iterate so far
  DeviceBuffer<float> gB, mB, vB;       // (N, r) Adam gradient and moments
  DeviceBuffer<float> gA, mA, vA;       // (r, K)
  DeviceBuffer<float> P, Gp;            // (max(N, K), T) outer products, packed normal matrices; T = r(r+1)/2
  DeviceBuffer<float> R;                // (max(N, K), r) right-hand sides
  DeviceBuffer<uint32_t> pairs;         // (T) packed-triangle index pairs
  DeviceBuffer<float> absmax;           // (N, ceil(K / G)) block absmax (init, RTN scales)
  DeviceBuffer<double> sums{2 * qk::kSumBlocks + 2};  // partials, then the 2 results

  cudaStream_t st() const { return stream.get(); }
  qk::SumScratch sum_scratch() { return {sums.data(), sums.data() + 2 * qk::kSumBlocks}; }

  // Host -> device and device -> host copies on this stream; both return when the copy is done (the
  // host side may then be reused or read).
  template <class T>
  void to_device(T* dst, const T* src, int64_t n) {
    if (n == 0) return;
    LORDS_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * sizeof(T), cudaMemcpyHostToDevice, st()));
    LORDS_CUDA_CHECK(cudaStreamSynchronize(st()));
  }
  template <class T>
  void to_host(T* dst, const T* src, int64_t n) {
    if (n == 0) return;
    LORDS_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * sizeof(T), cudaMemcpyDeviceToHost, st()));
    LORDS_CUDA_CHECK(cudaStreamSynchronize(st()));
  }
  template <class T>
  void device_copy(T* dst, const T* src, int64_t n) {
    if (n == 0) return;
    LORDS_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * sizeof(T), cudaMemcpyDeviceToDevice, st()));
  }
  // The two results of the last summing launch.
  void read_sums(double* out2) { to_host(out2, sums.data() + 2 * qk::kSumBlocks, 2); }

  int64_t bytes() const;
};

}  // namespace detail
}  // namespace lords::cuda
