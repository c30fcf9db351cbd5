// lords bench-kernels [--shapes ..] [--tokens ..] [--bits 4] [--group 128] [--act fp16|bf16]: qmatmul
// kernels vs cuBLAS fp16 and our block-wise NF4 kernel on Llama-3-8B shapes (needs a CUDA GPU).
#include <cstdio>
#include <memory>

#include "lords/core/error.h"
#include "tools/commands.h"
#if LORDS_HAVE_CUDA
#include "lords/cuda/bench_kernels.h"
#endif

namespace lords::tools {

Command add_bench_kernels(CLI::App& app) {
#if LORDS_HAVE_CUDA
  auto o = std::make_shared<cuda::BenchKernelsOptions>();
#endif
  auto json = std::make_shared<bool>(false);
  CLI::App* sub = app.add_subcommand(
      "bench-kernels", "GPU qmatmul (LoRDS, block-wise NF) vs cuBLAS fp16 on Llama-3-8B shapes: time, GB/s, TFLOP/s");
#if LORDS_HAVE_CUDA
  sub->add_option("--shapes", o->shapes, "qkv (6144x4096), o (4096x4096), gate_up (28672x4096), down (4096x14336)")
      ->capture_default_str();
  sub->add_option("--tokens", o->tokens, "token counts M")->capture_default_str();
  sub->add_option("--bits", o->bits, "code bits (2, 3, 4)")->capture_default_str()->check(CLI::Range(2, 4));
  sub->add_option("--group", o->group, "block size G; LoRDS uses the parity rank N K / (G (N + K))")
      ->capture_default_str();
  sub->add_option("--act", o->act, "activation type: fp16 or bf16")->capture_default_str();
  sub->add_option("--reps", o->reps, "timed calls per measurement (median)")->capture_default_str();
  sub->add_flag("--both-paths", o->both_paths, "also time LoRDS on the path not chosen automatically");
  sub->add_flag("--cublas-f32-out", o->cublas_f32_out,
                "also time cuBLAS with an fp32 output (qmatmul writes fp32; the ratios stay against fp16 out)");
#endif
  sub->add_flag("--json", *json, "print JSON");
  return {sub, [=]() -> int {  // -> int: without CUDA the body only throws
#if LORDS_HAVE_CUDA
            const auto r = cuda::bench_kernels(*o);
            std::printf("%s\n", *json ? cuda::bench_kernels_json(r).dump(2).c_str()
                                      : cuda::bench_kernels_table(r, *o).c_str());
            return 0;
#else
            LORDS_FAIL(ErrorKind::Unsupported, "[bench-kernels] this lords was built without CUDA (no nvcc found)");
#endif
          }};
}

}  // namespace lords::tools
