// lords convert MODEL -o OUT: HF directory or GGUF -> plain HF directory (F32 for GGUF block types).
#include <cstdio>

#include "lords/engine/convert_model.h"
#include "tools/commands.h"

namespace lords::tools {

Command add_convert(CLI::App& app) {
  struct Opts {
    std::string model, output;
    bool force = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("convert", "Write any supported model as a plain Hugging Face directory");
  sub->add_option("model", o->model, "HF model directory or .gguf file")->required();
  sub->add_option("-o,--output", o->output, "output directory")->required();
  sub->add_flag("--force", o->force, "replace an existing output directory");
  return {sub, [o]() {
            engine::convert_model(o->model, o->output, o->force);
            std::printf("wrote %s\n", o->output.c_str());
            return 0;
          }};
}

}  // namespace lords::tools
