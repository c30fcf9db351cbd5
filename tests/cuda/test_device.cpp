#include <gtest/gtest.h>

#include <vector>

#include "gpu_test_util.h"
#include "lords/core/error.h"
#include "lords/cuda/device.h"
#include "lords/cuda/device_buffer.h"

namespace lords::cuda {
namespace {

TEST(CudaDevice, AvailabilityNeverThrows) { EXPECT_NO_THROW(gpu_available()); }

TEST(CudaDevice, RequireGpuMatchesAvailability) {
  if (gpu_available()) {
    EXPECT_NO_THROW(require_gpu("test"));
    EXPECT_GE(device_props().sm_count, 1);
  } else {
    EXPECT_THROW(require_gpu("test"), Error);
  }
}

TEST(CudaDevice, BufferRoundTrip) {
  LORDS_REQUIRE_GPU();
  std::vector<float> h{1.5f, -2.0f, 3.25f};
  DeviceBuffer<float> d(h);
  EXPECT_EQ(d.to_host(), h);
  DeviceBuffer<float> moved = std::move(d);
  EXPECT_TRUE(d.empty());
  EXPECT_EQ(moved.to_host(), h);
}

}  // namespace
}  // namespace lords::cuda
