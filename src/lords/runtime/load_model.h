// Loading a model onto the device that runs it, behind the CausalLM interface: `--device cpu` keeps the
// LlamaModel (ref or cpu kernels), `--device cuda` uploads it to a GpuLlamaModel. Builds without CUDA,
// and machines without a GPU, refuse cuda with one Error{Unsupported} line instead of failing later.
#pragma once

#include <memory>
#include <string>

#include "lords/runtime/backend.h"
#include "lords/runtime/causal_lm.h"
#include "lords/runtime/llama_model.h"

namespace lords::runtime {

// True when models can run on `device` here: cpu always; cuda in a build with CUDA and a visible GPU.
// Never throws.
bool device_available(Device device);
// Throws Error{Unsupported} "[--device cuda] <why>" unless device_available(device).
void require_device(Device device);

// An HF directory, .gguf file or lords checkpoint on `device`. backend picks the host kernels and
// applies to Device::Cpu only (Error{Usage} for ref on cuda). On cuda the host copy of the weights is
// freed once uploaded.
std::unique_ptr<CausalLM> load_causal_lm(const std::string& path, Device device, Backend backend = Backend::Cpu);

// The weights of `model` on `device` (model stays usable, e.g. for calibration); for Device::Cpu
// nullptr: use model itself.
std::unique_ptr<CausalLM> copy_to_device(const LlamaModel& model, Device device);

}  // namespace lords::runtime
