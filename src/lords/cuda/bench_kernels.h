// lords bench-kernels: qmatmul kernels against cuBLAS fp16 on Llama-3-8B linear shapes, all timed in
// one run on one GPU. For every (shape, M): cuBLAS fp16 (dense W, fp16 out), our block-wise NF4
// kernel and LoRDS at the parity rank of the same block size, each the median of --reps timed calls
// with L2 flushed before each (so decode reads its weights from HBM, as in a real model whose
// weights do not fit in L2). Reports time, effective GB/s on the bytes the kernel must stream (packed
// codes + scales; fp16 W for cuBLAS), TFLOP/s, and the ratios.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lords::cuda {

struct BenchKernelsOptions {
  std::vector<std::string> shapes = {"qkv", "o", "gate_up", "down"};
  std::vector<int64_t> tokens = {1, 4, 16, 64, 256, 1024, 4096};
  int bits = 4;
  int64_t group = 128;
  std::string act = "fp16";  // fp16 | bf16
  int reps = 50;
  bool both_paths = false;   // also time the other LoRDS path (fused vs dequantize + cuBLAS)
  bool cublas_f32_out = false;  // also time cuBLAS with an fp32 output, as qmatmul's Y is
};

struct BenchKernelsRow {
  std::string shape;
  int64_t N = 0, K = 0, M = 0, rank = 0;
  double us_cublas = 0, us_block = 0, us_lords = 0, us_lords_alt = 0;
  double us_cublas_f32 = 0;  // cuBLAS fp16 W and X, fp32 Y (0: not timed)
  double lords_bytes = 0, block_bytes = 0;
  std::string lords_path, alt_path;
};

struct BenchKernelsResult {
  std::string device;
  double copy_gbps = 0;  // device-to-device copy, bytes read + written
  std::vector<BenchKernelsRow> rows;
};

BenchKernelsResult bench_kernels(const BenchKernelsOptions& o);
std::string bench_kernels_table(const BenchKernelsResult& r, const BenchKernelsOptions& o);
nlohmann::json bench_kernels_json(const BenchKernelsResult& r);

}  // namespace lords::cuda
