// lords bench-solvers [--shape 4096x4096 ...] [--bits 3,4] [--like MODEL --like-layer NAME] [--json]
#include <cstdio>

#include "lords/core/error.h"
#include "lords/engine/bench_solvers.h"
#include "tools/commands.h"

namespace lords::tools {

Command add_bench_solvers(CLI::App& app) {
  struct Opts {
    std::vector<std::string> shapes = {"4096x4096", "4096x14336"};
    std::vector<int> bits = {3, 4};
    engine::BenchSolversRequest req;
    std::string like, codebook = "nf";
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("bench-solvers", "RTN vs LoRDS SVD-init / Adam / ALS on large matrices");
  sub->add_option("--shape", o->shapes, "NxK shapes")->capture_default_str();
  sub->add_option("--bits", o->bits, "bit widths")->delimiter(',')->capture_default_str();
  sub->add_option("--block", o->req.block, "block size G")->capture_default_str();
  sub->add_option("--codebook", o->codebook, "nf | int")->capture_default_str();
  sub->add_option("--als-steps", o->req.als_steps, "ALS sweeps")->capture_default_str();
  sub->add_option("--adam-steps", o->req.adam_steps, "Adam steps")->capture_default_str();
  sub->add_option("--like", o->like, "model whose layer statistics the matrices copy");
  sub->add_option("--like-layer", o->req.like_layer, "tensor name in --like (as stored in that file)");
  sub->add_option("--threads", o->req.threads, "threads (0 = all cores)")->capture_default_str();
  sub->add_option("--seed", o->req.seed, "seed")->capture_default_str();
  sub->add_flag("--json", o->json, "print JSON");
  return {sub, [o]() {
            engine::BenchSolversRequest req = o->req;
            req.shapes.clear();
            for (const std::string& s : o->shapes) {
              long long n = 0, k = 0;
              char x = 0;
              LORDS_CHECK(std::sscanf(s.c_str(), "%lld%c%lld", &n, &x, &k) == 3 && x == 'x' && n > 0 && k > 0,
                          ErrorKind::Usage, "--shape must look like 4096x14336, got '{}'", s);
              req.shapes.emplace_back(n, k);
            }
            req.bits = o->bits;
            req.codebook = quant::codebook_kind_from_name(o->codebook);
            if (!o->like.empty()) {
              LORDS_CHECK(!req.like_layer.empty(), ErrorKind::Usage, "--like needs --like-layer");
              req.like_model = o->like;
            }
            const auto rows = engine::bench_solvers(req);
            std::printf("%s\n", o->json ? engine::bench_solvers_json(rows).dump(2).c_str()
                                        : engine::bench_solvers_table(rows).c_str());
            return 0;
          }};
}

}  // namespace lords::tools
