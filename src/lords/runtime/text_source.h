// Text and tokenizer loading for the evaluation commands.
#pragma once

#include <string>

#include "lords/tokenizer/tokenizer.h"

namespace lords::runtime {

// The tokenizer of a model path: tokenizer.json / tokenizer.gguf.json of a directory (HF or lords
// checkpoint), or the metadata of a .gguf file.
Tokenizer load_model_tokenizer(const std::string& model_path);

// A whole UTF-8 text file; throws Error naming the file when it is missing, empty or not UTF-8
// (with the byte offset of the first bad sequence).
std::string read_text_file(const std::string& path);

}  // namespace lords::runtime
