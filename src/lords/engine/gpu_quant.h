// Quantization on the GPU, engine side: which device `lords quantize` runs on, the check that a
// configuration can run there, and GpuLinearQuantizer, the GPU counterpart of quantize_linear()
// (linear_quant.h) with the same outputs. Declared in every build; a build without CUDA throws
// Error{Unsupported} from the check and the constructor (gpu_quant.cpp), the real definitions are in
// gpu/gpu_quant.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "lords/engine/linear_quant.h"
#include "lords/engine/quant_config.h"

namespace lords::engine {

enum class QuantDevice { Cpu, Cuda };
QuantDevice quant_device_from_name(const std::string& name);  // "cpu" | "cuda"; throws Error{Usage}
std::string quant_device_name(QuantDevice d);

// Throws Error{Unsupported} with one line naming `what` unless this build has CUDA and a GPU is present.
void require_gpu_device(const char* what);
// The same, and first that `config` has a GPU implementation: method lords (solver als, adam or none)
// or rtn, objective weight.
void require_gpu_quantize(const QuantConfig& config, const char* what);

// One quantizer per thread; device buffers are reused from one linear to the next (bounded by the
// largest linear). Results match quantize_linear() within float rounding (codes may differ at ties).
class GpuLinearQuantizer {
 public:
  GpuLinearQuantizer();  // throws Error{Unsupported} without CUDA or a GPU
  ~GpuLinearQuantizer();
  GpuLinearQuantizer(const GpuLinearQuantizer&) = delete;
  GpuLinearQuantizer& operator=(const GpuLinearQuantizer&) = delete;

  // W (N, K) in host memory. config must pass require_gpu_quantize.
  QuantizedLinear quantize(const float* W, int64_t N, int64_t K, const QuantConfig& config, const quant::Codebook& cb,
                           LinearStats* stats);

 private:
  struct Impl;  // the cuda::GpuQuantizer (gpu/gpu_quant.cpp)
  std::unique_ptr<Impl> impl_;
};

}  // namespace lords::engine
