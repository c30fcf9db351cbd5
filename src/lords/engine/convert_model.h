// `lords convert MODEL -o OUT`: any supported source (HF directory or GGUF) -> a plain HF directory
// (config.json, model.safetensors with HF names and layout, tokenizer files). GGUF block types are
// dequantized to F32. This is how a GGUF-only model reaches reference tools such as transformers.
#pragma once

#include <string>

namespace lords::engine {

void convert_model(const std::string& source, const std::string& output, bool overwrite);

}  // namespace lords::engine
