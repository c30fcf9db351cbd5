// Device choice and model loading (see load_model.h). The only runtime file outside gpu/ that knows
// whether this build has CUDA.
#include "lords/runtime/load_model.h"

#include "lords/core/error.h"

#if defined(LORDS_HAVE_CUDA)
#include "lords/cuda/device.h"
#include "lords/runtime/gpu/gpu_llama_model.h"
#endif

namespace lords::runtime {

bool device_available(Device device) {
  if (device == Device::Cpu) return true;
#if defined(LORDS_HAVE_CUDA)
  return cuda::gpu_available();
#else
  return false;
#endif
}

void require_device(Device device) {
  if (device == Device::Cpu) return;
#if defined(LORDS_HAVE_CUDA)
  cuda::require_gpu("--device cuda");
#else
  LORDS_FAIL(ErrorKind::Unsupported,
             "[--device cuda] this build of lords has no CUDA support (nvcc was not found when it was configured)");
#endif
}

std::unique_ptr<CausalLM> copy_to_device(const LlamaModel& model, Device device) {
  if (device == Device::Cpu) return nullptr;
  require_device(device);
  LORDS_CHECK(model.lora_linears() == 0, ErrorKind::Unsupported,
              "[--device {}] LoRA adapters (a QLoRA fine-tune) run on the cpu only; use --device cpu",
              device_name(device));
#if defined(LORDS_HAVE_CUDA)
  return std::make_unique<GpuLlamaModel>(model);
#else
  (void)model;
  return nullptr;  // not reached: require_device threw
#endif
}

std::unique_ptr<CausalLM> load_causal_lm(const std::string& path, Device device, Backend backend) {
  LORDS_CHECK(device == Device::Cpu || backend == Backend::Cpu, ErrorKind::Usage,
              "--backend {} runs on the cpu only, not with --device {}", backend_name(backend), device_name(device));
  require_device(device);  // before loading: a missing GPU is reported at once, not after minutes of I/O
  LlamaModel host = LlamaModel::load(path, backend);
  if (device == Device::Cpu) return std::make_unique<LlamaModel>(std::move(host));
  return copy_to_device(host, device);  // host is freed on return
}

}  // namespace lords::runtime
