// Quantizing the tests' random models into checkpoints: the tests need a checkpoint, not its quality,
// so three solver steps on two threads, and no progress output.
#pragma once

#include <cstdint>
#include <string>

#include "lords/engine/quant_config.h"

namespace lords::test {

// method at bits with block size G, 3 solver steps, 2 threads; the other fields at their defaults.
engine::QuantConfig test_quant_config(engine::Method method, int bits, int64_t block);
// src (an HF directory) quantized by the engine into the checkpoint directory out.
void quantize_quietly(const std::string& src, const std::string& out, const engine::QuantConfig& config);

}  // namespace lords::test
