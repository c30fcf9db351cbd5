// DeviceBuffer<T>: an owned, typed cudaMalloc allocation (plain device memory, never managed), with
// checked uploads and downloads. Move-only. An empty buffer holds no allocation.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>
#include <vector>

#include "lords/cuda/cuda_check.h"

namespace lords::cuda {

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count_ > 0) LORDS_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr_), count_ * sizeof(T)));
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host.data(), host.size()); }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      if (ptr_) cudaFree(ptr_);
      ptr_ = std::exchange(o.ptr_, nullptr);
      count_ = std::exchange(o.count_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* data() { return ptr_; }
  const T* data() const { return ptr_; }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }
  bool empty() const { return count_ == 0; }

  // Grows (never shrinks) to at least `count` elements; contents are not kept.
  void reserve(size_t count) {
    if (count > count_) *this = DeviceBuffer(count);
  }
  void upload(const T* host, size_t count, size_t offset = 0, cudaStream_t stream = nullptr) {
    LORDS_CUDA_CHECK(cudaMemcpyAsync(ptr_ + offset, host, count * sizeof(T), cudaMemcpyHostToDevice, stream));
    if (!stream) LORDS_CUDA_CHECK(cudaStreamSynchronize(nullptr));
  }
  void download(T* host, size_t count, size_t offset = 0) const {
    LORDS_CUDA_CHECK(cudaMemcpy(host, ptr_ + offset, count * sizeof(T), cudaMemcpyDeviceToHost));
  }
  std::vector<T> to_host() const {
    std::vector<T> h(count_);
    if (count_) download(h.data(), count_);
    return h;
  }
  DeviceBuffer clone() const {
    DeviceBuffer c(count_);
    if (count_) LORDS_CUDA_CHECK(cudaMemcpy(c.ptr_, ptr_, bytes(), cudaMemcpyDeviceToDevice));
    return c;
  }
  void zero(cudaStream_t stream = nullptr) {
    if (count_) LORDS_CUDA_CHECK(cudaMemsetAsync(ptr_, 0, bytes(), stream));
  }

 private:
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

}  // namespace lords::cuda
