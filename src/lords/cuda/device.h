// The GPU this process runs on: whether one is usable at all (tests skip, commands refuse with a
// clear error when not) and the properties kernels size themselves by.
#pragma once

#include <cstdint>
#include <string>

namespace lords::cuda {

// True when the CUDA runtime sees at least one device. Never throws: a machine without a driver or
// without a GPU simply has none.
bool gpu_available();

struct DeviceProps {
  std::string name;
  int sm_count = 0;
  int cc_major = 0, cc_minor = 0;
  int64_t global_mem = 0;
  int64_t l2_bytes = 0;
  int64_t smem_per_block_optin = 0;  // the most dynamic shared memory one block can be given
};
// Properties of the current device (cached after the first call). Throws Error{Cuda} without one.
const DeviceProps& device_props();

// Throws Error{Unsupported} "[what] needs a CUDA GPU: <why>" unless a device is usable.
void require_gpu(const char* what);

}  // namespace lords::cuda
