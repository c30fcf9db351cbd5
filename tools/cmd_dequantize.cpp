// lords dequantize CKPT -o OUT [--dtype f32|f16|bf16]: plain safetensors that other tools load.
#include <cstdio>

#include "lords/core/error.h"
#include "lords/engine/dequantize_model.h"
#include "tools/commands.h"

namespace lords::tools {

Command add_dequantize(CLI::App& app) {
  struct Opts {
    std::string checkpoint, output, dtype = "f32";
    bool force = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("dequantize", "Write a LoRDS/RTN checkpoint back as plain safetensors");
  sub->add_option("checkpoint", o->checkpoint, "lords checkpoint directory")->required();
  sub->add_option("-o,--output", o->output, "output directory")->required();
  sub->add_option("--dtype", o->dtype, "f32 | f16 | bf16")->capture_default_str();
  sub->add_flag("--force", o->force, "replace an existing output directory");
  return {sub, [o]() {
            engine::DequantizeRequest req;
            req.checkpoint = o->checkpoint;
            req.output = o->output;
            req.overwrite = o->force;
            LORDS_CHECK(o->dtype == "f32" || o->dtype == "f16" || o->dtype == "bf16", ErrorKind::Usage,
                        "--dtype must be f32, f16 or bf16, got '{}'", o->dtype);
            req.dtype = o->dtype == "f32" ? DType::F32 : o->dtype == "f16" ? DType::F16 : DType::BF16;
            engine::dequantize_model(req);
            std::printf("wrote %s\n", req.output.c_str());
            return 0;
          }};
}

}  // namespace lords::tools
