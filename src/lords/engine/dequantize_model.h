// Checkpoint -> plain safetensors: every quantized linear rebuilt as W_hat = level[Q] (.) scale in the
// chosen dtype under its HF name, every other tensor copied, config.json without its
// quantization_config, tokenizer files copied. The result loads in tools that know nothing of lords.
#pragma once

#include <string>

#include "lords/core/dtype.h"

namespace lords::engine {

struct DequantizeRequest {
  std::string checkpoint;
  std::string output;
  DType dtype = DType::F32;
  bool overwrite = false;
};

void dequantize_model(const DequantizeRequest& request);

}  // namespace lords::engine
