// lords inspect CKPT [--json]: settings, per-layer table and storage of a lords checkpoint.
#include <cstdio>

#include "lords/engine/checkpoint.h"
#include "lords/engine/inspect.h"
#include "tools/commands.h"

namespace lords::tools {

Command add_inspect(CLI::App& app) {
  struct Opts {
    std::string checkpoint;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("inspect", "Describe a lords checkpoint");
  sub->add_option("checkpoint", o->checkpoint, "lords checkpoint directory")->required();
  sub->add_flag("--json", o->json, "print JSON");
  return {sub, [o]() {
            const engine::Checkpoint ck(o->checkpoint);
            const nlohmann::json j = engine::describe_checkpoint(ck);
            std::printf("%s\n", o->json ? j.dump(2).c_str() : engine::describe_text(j).c_str());
            return 0;
          }};
}

}  // namespace lords::tools
