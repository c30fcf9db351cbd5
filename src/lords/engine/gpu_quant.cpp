// The device-independent half of gpu_quant.h, and its stand-ins for builds without CUDA.
#include "lords/engine/gpu_quant.h"

#include "lords/core/error.h"

namespace lords::engine {

QuantDevice quant_device_from_name(const std::string& name) {
  if (name == "cpu") return QuantDevice::Cpu;
  if (name == "cuda") return QuantDevice::Cuda;
  LORDS_FAIL(ErrorKind::Usage, "unknown device '{}' (expected cpu or cuda)", name);
}

std::string quant_device_name(QuantDevice d) { return d == QuantDevice::Cpu ? "cpu" : "cuda"; }

void require_gpu_quantize(const QuantConfig& config, const char* what) {
  LORDS_CHECK(config.objective == Objective::Weight, ErrorKind::Unsupported,
              "[{}] --objective {} has no GPU implementation (only weight); use --device cpu", what,
              objective_name(config.objective));
  require_gpu_device(what);
}

#if !defined(LORDS_HAVE_CUDA)

namespace {
[[noreturn]] void no_cuda(const char* what) {
  LORDS_FAIL(ErrorKind::Unsupported,
             "[{}] this lords was built without CUDA (LORDS_CUDA=OFF or no nvcc at configure time)", what);
}
}  // namespace

void require_gpu_device(const char* what) { no_cuda(what); }

struct GpuLinearQuantizer::Impl {};
GpuLinearQuantizer::GpuLinearQuantizer() { no_cuda("gpu quantizer"); }
GpuLinearQuantizer::~GpuLinearQuantizer() = default;

QuantizedLinear GpuLinearQuantizer::quantize(const float*, int64_t, int64_t, const QuantConfig&, const quant::Codebook&,
                                             LinearStats*) {
  no_cuda("gpu quantizer");
}

#endif

}  // namespace lords::engine
