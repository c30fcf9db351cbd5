#include "lords/cuda/bench_kernels.h"

#include <cublas_v2.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "lords/core/error.h"
#include "lords/cuda/cuda_check.h"
#include "lords/cuda/device.h"
#include "lords/cuda/qmatmul.h"
#include "lords/quant/codebook.h"
#include "lords/quant/pack.h"

namespace lords::cuda {
namespace {

struct ShapeDef {
  int64_t N, K;
};
const std::map<std::string, ShapeDef>& llama3_shapes() {
  static const std::map<std::string, ShapeDef> s = {
      {"qkv", {6144, 4096}}, {"o", {4096, 4096}}, {"gate_up", {28672, 4096}}, {"down", {4096, 14336}}};
  return s;
}

// Time of one call: `reps` calls captured into a CUDA graph (no launch gaps or host overhead in
// the numbers), cycling over `copies` copies of the operands so that a copy is read again only after
// more than 2x the L2 size of other data (the weights come from HBM, as in a model whose weights do
// not fit in L2). Median of 5 timed replays after one warm-up replay, divided by reps.
template <class Fn>
double time_us(Fn&& fn, int copies, int reps, cudaStream_t s) {
  for (int i = 0; i < copies; ++i) fn(i);  // warm-up: module load, smem attributes, occupancy
  LORDS_CUDA_CHECK(cudaStreamSynchronize(s));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  LORDS_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < reps; ++i) fn(i % copies);
  LORDS_CUDA_CHECK(cudaStreamEndCapture(s, &graph));
  LORDS_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  cudaEvent_t a, b;
  LORDS_CUDA_CHECK(cudaEventCreate(&a));
  LORDS_CUDA_CHECK(cudaEventCreate(&b));
  LORDS_CUDA_CHECK(cudaGraphLaunch(exec, s));
  std::vector<double> t;
  for (int i = 0; i < 5; ++i) {
    LORDS_CUDA_CHECK(cudaEventRecord(a, s));
    LORDS_CUDA_CHECK(cudaGraphLaunch(exec, s));
    LORDS_CUDA_CHECK(cudaEventRecord(b, s));
    LORDS_CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    LORDS_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms * 1e3 / reps);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int copies_for(double bytes) {
  return int(std::clamp(std::ceil(3.0 * double(device_props().l2_bytes) / bytes), 1.0, 16.0));
}

double copy_bandwidth_gbps() {
  const size_t bytes = size_t(1) << 30;
  DeviceBuffer<uint8_t> a(bytes), b(bytes);
  a.zero();
  DeviceBuffer<uint8_t> none;
  cudaEvent_t e0, e1;
  LORDS_CUDA_CHECK(cudaEventCreate(&e0));
  LORDS_CUDA_CHECK(cudaEventCreate(&e1));
  std::vector<double> t;
  for (int i = 0; i < 12; ++i) {
    LORDS_CUDA_CHECK(cudaEventRecord(e0));
    LORDS_CUDA_CHECK(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice));
    LORDS_CUDA_CHECK(cudaEventRecord(e1));
    LORDS_CUDA_CHECK(cudaEventSynchronize(e1));
    float ms = 0;
    LORDS_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
    if (i >= 2) t.push_back(ms);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  std::sort(t.begin(), t.end());
  return 2.0 * bytes / (t[t.size() / 2] * 1e-3) / 1e9;
}

// Random fp16/bf16 bits of N(0, scale) values.
std::vector<uint16_t> random_act(size_t n, uint32_t seed, float scale, ActType act) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = act_bits(d(rng), act);
  return v;
}

struct RandomQ {
  std::vector<uint8_t> packed;
  std::vector<float> levels, B, A, scales;
  ops::QWeight w;
};

RandomQ random_q(int64_t N, int64_t K, int bits, ops::QScaleKind kind, int64_t rg, uint32_t seed) {
  RandomQ q;
  std::mt19937 rng(seed);
  q.levels = quant::make_codebook(quant::CodebookKind::NF, bits).levels;
  // Packed random bytes are random codes at any width.
  q.packed.resize(static_cast<size_t>(N * quant::packed_row_bytes(K, bits)));
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : q.packed) b = static_cast<uint8_t>(byte(rng));
  std::uniform_real_distribution<float> pos(0.2f, 1.f);
  q.w.kind = kind, q.w.N = N, q.w.K = K, q.w.bits = bits, q.w.codes = q.packed.data(), q.w.levels = q.levels.data();
  if (kind == ops::QScaleKind::LowRank) {
    q.B.resize(size_t(N * rg));
    q.A.resize(size_t(rg * K));
    for (auto& v : q.B) v = 0.01f * pos(rng);
    for (auto& v : q.A) v = pos(rng);
    q.w.r = rg, q.w.B = q.B.data(), q.w.A = q.A.data();
  } else {
    q.scales.resize(size_t(N * ((K + rg - 1) / rg)));
    for (auto& v : q.scales) v = 0.01f * pos(rng);
    q.w.G = rg, q.w.scales = q.scales.data();
  }
  return q;
}

}  // namespace

BenchKernelsResult bench_kernels(const BenchKernelsOptions& o) {
  require_gpu("bench-kernels");
  LORDS_CHECK(o.act == "fp16" || o.act == "bf16", ErrorKind::Usage, "[bench-kernels] --act {}: expected fp16 or bf16",
              o.act);
  const ActType act = o.act == "fp16" ? ActType::F16 : ActType::BF16;
  const cudaDataType_t ct = act == ActType::F16 ? CUDA_R_16F : CUDA_R_16BF;
  BenchKernelsResult res;
  res.device = device_props().name;
  res.copy_gbps = copy_bandwidth_gbps();
  cudaStream_t stream;
  LORDS_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cublasHandle_t h;
  LORDS_CUBLAS_CHECK(cublasCreate(&h));
  LORDS_CUBLAS_CHECK(cublasSetStream(h, stream));
  QmmWorkspace ws;
  const int64_t max_m = *std::max_element(o.tokens.begin(), o.tokens.end());
  uint32_t seed = 1;
  for (const auto& name : o.shapes) {
    const auto it = llama3_shapes().find(name);
    LORDS_CHECK(it != llama3_shapes().end(), ErrorKind::Usage,
                "[bench-kernels] unknown shape '{}' (expected qkv, o, gate_up, down)", name);
    const int64_t N = it->second.N, K = it->second.K;
    const int64_t rank = N * K / (o.group * (N + K));  // parity with block-wise at group G
    const RandomQ lq = random_q(N, K, o.bits, ops::QScaleKind::LowRank, rank, seed++);
    const RandomQ bq = random_q(N, K, o.bits, ops::QScaleKind::Block, o.group, seed++);
    std::vector<GpuQWeight> lw, bw;
    lw.push_back(GpuQWeight::upload(lq.w, act));
    bw.push_back(GpuQWeight::upload(bq.w, act));
    std::vector<DeviceBuffer<uint16_t>> Wd;
    Wd.emplace_back(random_act(size_t(N * K), seed++, 0.02f, act));
    const int lc = copies_for(double(lw[0].stream_bytes())), bc = copies_for(double(bw[0].stream_bytes()));
    const int dc = copies_for(2.0 * double(N * K));
    while (int(lw.size()) < lc) lw.push_back(lw[0].clone());
    while (int(bw.size()) < bc) bw.push_back(bw[0].clone());
    while (int(Wd.size()) < dc) Wd.push_back(Wd[0].clone());
    DeviceBuffer<uint16_t> X(random_act(size_t(max_m * K), seed++, 1.f, act));
    DeviceBuffer<float> Y(size_t(max_m * N));
    DeviceBuffer<uint16_t> Yh(size_t(max_m * N));
    for (int64_t M : o.tokens) {
      BenchKernelsRow row;
      row.shape = name, row.N = N, row.K = K, row.M = M, row.rank = rank;
      const float alpha = 1.f, beta = 0.f;
      // Fewer calls per graph for the long GEMMs: about 20 ms of work per replay is plenty.
      const int reps = int(std::clamp<int64_t>(int64_t(o.reps) * 64 / std::max<int64_t>(M, 64), 4, o.reps));
      // cuBLAS on dense W: Y in the activation type (the baseline), or in fp32 as qmatmul writes it.
      auto cublas_us = [&](void* y, cudaDataType_t yt) {
        return time_us(
            [&](int c) {
              LORDS_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, int(N), int(M), int(K), &alpha,
                                              Wd[c].data(), ct, int(K), X.data(), ct, int(K), &beta, y, yt, int(N),
                                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
            },
            dc, reps, stream);
      };
      row.us_cublas = cublas_us(Yh.data(), ct);
      if (o.cublas_f32_out) row.us_cublas_f32 = cublas_us(Y.data(), CUDA_R_32F);
      row.us_block = time_us([&](int c) { qmatmul(Y.data(), X.data(), M, bw[c], stream, &ws); }, bc, reps, stream);
      row.us_lords = time_us([&](int c) { qmatmul(Y.data(), X.data(), M, lw[c], stream, &ws); }, lc, reps, stream);
      const bool big = M >= qmatmul_dequant_gemm_min_tokens(lw[0]);
      row.lords_path = qmatmul_kernel_name(M, lw[0]);
      if (o.both_paths) {
        const QmmPath alt = big ? QmmPath::Fused : QmmPath::DequantGemm;
        row.alt_path = qmatmul_kernel_name(M, lw[0], alt);
        row.us_lords_alt =
            time_us([&](int c) { qmatmul(Y.data(), X.data(), M, lw[c], stream, &ws, alt); }, lc, reps, stream);
      }
      row.lords_bytes = double(lw[0].stream_bytes());
      row.block_bytes = double(bw[0].stream_bytes());
      res.rows.push_back(row);
      std::fprintf(stderr, "bench-kernels: %s M=%ld done\n", name.c_str(), long(M));
    }
  }
  cublasDestroy(h);
  cudaStreamDestroy(stream);
  return res;
}

std::string bench_kernels_table(const BenchKernelsResult& r, const BenchKernelsOptions& o) {
  std::string s = fmt::format(
      "device: {}   copy bandwidth (read+write): {:.0f} GB/s   {}-bit NF, block G={} vs LoRDS at parity rank, {}\n",
      r.device, r.copy_gbps, o.bits, o.group, o.act);
  s += fmt::format("{:<8} {:>5} {:>4} | {:>9} {:>9} {:>9} | {:>8} {:>6} {:>7} | {:>8} {:>8} | {}\n", "shape", "M", "r",
                   "cuBLAS us", "NF4blk us", "LoRDS us", "LoRDS GB/s", "%copy", "TFLOP/s", "x cuBLAS", "x NF4blk",
                   o.both_paths ? "path (other path us)" : "path");
  for (const auto& w : r.rows) {
    const double gbs = w.lords_bytes / (w.us_lords * 1e-6) / 1e9;
    const double tflops = 2.0 * w.M * w.N * w.K / (w.us_lords * 1e-6) / 1e12;
    s += fmt::format("{:<8} {:>5} {:>4} | {:>9.1f} {:>9.1f} {:>9.1f} | {:>8.0f} {:>5.0f}% {:>7.1f} | {:>8.2f} {:>8.2f} | {}",
                     w.shape, w.M, w.rank, w.us_cublas, w.us_block, w.us_lords, gbs, 100.0 * gbs / r.copy_gbps, tflops,
                     w.us_cublas / w.us_lords, w.us_block / w.us_lords, w.lords_path);
    if (o.both_paths) s += fmt::format(" ({} {:.1f})", w.alt_path, w.us_lords_alt);
    if (w.us_cublas_f32 > 0) s += fmt::format(" [cuBLAS fp32-out {:.1f} us]", w.us_cublas_f32);
    s += "\n";
  }
  s += "x cuBLAS = cuBLAS time / LoRDS time (>1: LoRDS faster); x NF4blk = NF4 block time / LoRDS time.\n";
  return s;
}

nlohmann::json bench_kernels_json(const BenchKernelsResult& r) {
  nlohmann::json j;
  j["device"] = r.device;
  j["copy_gbps"] = r.copy_gbps;
  for (const auto& w : r.rows)
    j["rows"].push_back({{"shape", w.shape}, {"N", w.N}, {"K", w.K}, {"M", w.M}, {"rank", w.rank},
                         {"us_cublas", w.us_cublas}, {"us_block", w.us_block}, {"us_lords", w.us_lords},
                         {"us_lords_other_path", w.us_lords_alt}, {"us_cublas_f32_out", w.us_cublas_f32},
                         {"lords_path", w.lords_path},
                         {"lords_bytes", w.lords_bytes}, {"block_bytes", w.block_bytes}});
  return j;
}

}  // namespace lords::cuda
