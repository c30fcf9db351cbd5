// Host tensors. HostTensor owns fp32 data in row-major order; shapes are outermost-first like
// PyTorch/HF ((N, K) for a linear weight: N = out_features, K = in_features).
#pragma once

#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace lords {

using Shape = std::vector<int64_t>;

inline int64_t shape_numel(const Shape& s) {
  return std::accumulate(s.begin(), s.end(), int64_t{1}, [](int64_t a, int64_t b) { return a * b; });
}
inline std::string shape_str(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

struct HostTensor {
  Shape shape;
  std::vector<float> data;  // row-major, numel(shape) elements

  HostTensor() = default;
  explicit HostTensor(Shape s) : shape(std::move(s)), data(static_cast<size_t>(shape_numel(shape))) {}
  int64_t numel() const { return static_cast<int64_t>(data.size()); }
  int64_t rows() const { return shape.size() == 2 ? shape[0] : 1; }
  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }
};

}  // namespace lords
