// GpuLlamaModel: upload from a LlamaModel and the forward pass, op for op the one of llama_model.cpp
// (see gpu_llama_model.h).
#include "lords/runtime/gpu/gpu_llama_model.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "lords/core/error.h"
#include "lords/cuda/cuda_check.h"
#include "lords/cuda/device.h"
#include "lords/cuda/ops/add.h"
#include "lords/cuda/ops/attention.h"
#include "lords/cuda/ops/convert.h"
#include "lords/cuda/ops/embedding.h"
#include "lords/cuda/ops/rmsnorm.h"
#include "lords/cuda/ops/rope.h"
#include "lords/cuda/ops/silu_mul.h"

namespace lords::runtime {

GpuLlamaModel::Stream::Stream() {
  cuda::require_gpu("gpu model");
  LORDS_CUDA_CHECK(cudaStreamCreate(&s_));
}

GpuLlamaModel::Stream::~Stream() {
  if (s_) {
    cudaStreamSynchronize(s_);  // a forward interrupted by an error may have left work queued
    cudaStreamDestroy(s_);
  }
}

GpuLlamaModel::GpuLlamaModel(const LlamaModel& host)
    : config_(host.config()), sliding_window_(host.sliding_window()), blas_(stream_.get()) {
  embed_ = cuda::DeviceBuffer<float>(host.embedding().data);
  for (int64_t il = 0; il < config_.n_layer; ++il) {
    const LlamaLayer& h = host.layers()[static_cast<size_t>(il)];
    const std::string b = fmt::format("blk.{}.", il);
    Layer l;
    l.attn_norm = cuda::DeviceBuffer<float>(h.attn_norm);
    l.ffn_norm = cuda::DeviceBuffer<float>(h.ffn_norm);
    l.q = GpuLinear::upload(h.q, b + "attn_q.weight");
    l.k = GpuLinear::upload(h.k, b + "attn_k.weight");
    l.v = GpuLinear::upload(h.v, b + "attn_v.weight");
    l.o = GpuLinear::upload(h.o, b + "attn_output.weight");
    l.gate = GpuLinear::upload(h.gate, b + "ffn_gate.weight");
    l.up = GpuLinear::upload(h.up, b + "ffn_up.weight");
    l.down = GpuLinear::upload(h.down, b + "ffn_down.weight");
    layers_.push_back(std::move(l));
  }
  out_norm_ = cuda::DeviceBuffer<float>(host.output_norm());
  head_ = GpuLinear::upload(host.head(), "output.weight");
  inv_freq_ = cuda::DeviceBuffer<float>(host.inv_freq());
  pos_ = cuda::DeviceBuffer<int64_t>(1);
  kv_new_ = cuda::DeviceBuffer<float>(static_cast<size_t>(2 * config_.n_head_kv * config_.head_dim));
  const char* env = std::getenv("LORDS_CUDA_GRAPHS");
  graphs_ = !(env && std::strcmp(env, "0") == 0);
  LORDS_CUDA_CHECK(cudaDeviceSynchronize());  // every upload has landed before the first kernel reads it
}

// Work a forward interrupted by an error left queued must finish before the buffers it uses are freed.
GpuLlamaModel::~GpuLlamaModel() {
  cudaStreamSynchronize(stream_.get());
  drop_graph();
}

void GpuLlamaModel::drop_graph() {
  if (graph_) cudaGraphExecDestroy(graph_);
  graph_ = nullptr;
  graph_cache_ = nullptr;
}

void GpuLlamaModel::set_cuda_graphs(bool on) {
  graphs_ = on;
  drop_graph();
}

int64_t GpuLlamaModel::count_linears(GpuLinear::Kind kind) const {
  int64_t n = head_.kind() == kind ? 1 : 0;
  for (const Layer& l : layers_)
    for (const GpuLinear* x : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) n += x->kind() == kind ? 1 : 0;
  return n;
}

GpuKvCache GpuLlamaModel::make_cache(int64_t capacity) const {
  return GpuKvCache(config_.n_layer, cache_capacity(config_, capacity), config_.n_head_kv, config_.head_dim);
}

std::unique_ptr<KvCacheBase> GpuLlamaModel::new_cache(int64_t capacity) const {
  return std::make_unique<GpuKvCache>(make_cache(capacity));
}

void GpuLlamaModel::reserve(int64_t T) {
  if (T <= ws_.rows) return;
  const auto D = static_cast<size_t>(config_.hidden), I = static_cast<size_t>(config_.intermediate),
             Q = static_cast<size_t>(config_.n_head * config_.head_dim), V = static_cast<size_t>(config_.vocab),
             n = static_cast<size_t>(T);
  ws_.tokens.reserve(n);
  ws_.x.reserve(n * D);
  ws_.xn.reserve(n * D);
  ws_.q.reserve(n * Q);
  ws_.att.reserve(n * Q);
  ws_.tmp.reserve(n * D);
  ws_.gate.reserve(n * I);
  ws_.up.reserve(n * I);
  ws_.logits.reserve(n * V);
  ws_.x16.reserve(n * std::max({D, Q, I}));
  ws_.rows = T;
}

void GpuLlamaModel::run_layer(int64_t il, int64_t T, GpuKvCache& cache, const int64_t* p0_dev) {
  const Layer& l = layers_[static_cast<size_t>(il)];
  const int64_t D = config_.hidden, H = config_.n_head, Hkv = config_.n_head_kv, Dh = config_.head_dim,
                I = config_.intermediate, p0 = cache.pos;
  const auto eps = static_cast<float>(config_.rms_eps);
  const cudaStream_t s = stream_.get();
  // Attention block. This step's keys/values go straight into their cache rows p0..p0+T-1, or in the graph
  // form (p0 in device memory) to kv_new_, appended after RoPE.
  float* k_new = p0_dev ? kv_new_.data() : cache.k(il) + p0 * Hkv * Dh;             // (T, Hkv, Dh)
  float* v_new = p0_dev ? kv_new_.data() + Hkv * Dh : cache.v(il) + p0 * Hkv * Dh;  // (T, Hkv, Dh)
  cuda::rmsnorm(ws_.xn.data(), ws_.x.data(), l.attn_norm.data(), T, D, eps, s);
  cuda::convert_f32_to_f16(x16(), ws_.xn.data(), T * D, s);
  l.q.forward(ws_.q.data(), x16(), T, blas_, &qmm_ws_);
  l.k.forward(k_new, x16(), T, blas_, &qmm_ws_);
  l.v.forward(v_new, x16(), T, blas_, &qmm_ws_);
  cuda::rope(ws_.q.data(), p0, inv_freq_.data(), T, H, Dh, s, p0_dev);
  cuda::rope(k_new, p0, inv_freq_.data(), T, Hkv, Dh, s, p0_dev);
  if (p0_dev) cuda::kv_append(cache.k(il), cache.v(il), k_new, v_new, p0_dev, Hkv * Dh, s);
  cuda::attention(ws_.att.data(), ws_.q.data(), cache.k(il), cache.v(il), {T, p0, H, Hkv, Dh}, s, p0_dev);
  cuda::convert_f32_to_f16(x16(), ws_.att.data(), T * H * Dh, s);
  l.o.forward(ws_.tmp.data(), x16(), T, blas_, &qmm_ws_);
  cuda::add_inplace(ws_.x.data(), ws_.tmp.data(), T * D, s);
  // MLP block (SwiGLU).
  cuda::rmsnorm(ws_.xn.data(), ws_.x.data(), l.ffn_norm.data(), T, D, eps, s);
  cuda::convert_f32_to_f16(x16(), ws_.xn.data(), T * D, s);
  l.gate.forward(ws_.gate.data(), x16(), T, blas_, &qmm_ws_);
  l.up.forward(ws_.up.data(), x16(), T, blas_, &qmm_ws_);
  cuda::silu_mul(ws_.gate.data(), ws_.gate.data(), ws_.up.data(), T * I, s);
  cuda::convert_f32_to_f16(x16(), ws_.gate.data(), T * I, s);
  l.down.forward(ws_.tmp.data(), x16(), T, blas_, &qmm_ws_);
  cuda::add_inplace(ws_.x.data(), ws_.tmp.data(), T * D, s);
}

void GpuLlamaModel::run_model(int64_t T, GpuKvCache& cache, int64_t first, const int64_t* p0_dev) {
  const int64_t D = config_.hidden, V = config_.vocab, rows = T - first;
  const cudaStream_t s = stream_.get();
  cuda::embedding(ws_.x.data(), embed_.data(), ws_.tokens.data(), T, V, D, s);
  for (int64_t il = 0; il < config_.n_layer; ++il) run_layer(il, T, cache, p0_dev);
  // Final norm and LM head, on the last row only when that is all the caller wants.
  cuda::rmsnorm(ws_.xn.data(), ws_.x.data() + first * D, out_norm_.data(), rows, D,
                static_cast<float>(config_.rms_eps), s);
  cuda::convert_f32_to_f16(x16(), ws_.xn.data(), rows * D, s);
  head_.forward(ws_.logits.data(), x16(), rows, blas_, &qmm_ws_);
}

void GpuLlamaModel::decode_graph_step(GpuKvCache& cache) {
  const cudaStream_t s = stream_.get();
  pos_.upload(&cache.pos, 1, 0, s);
  if (graph_ && graph_cache_ != cache.k(0)) drop_graph();
  if (!graph_ && !decode_warmed_) {  // first step: eager, so one-time allocations happen outside a capture
    run_model(1, cache, 0, pos_.data());
    decode_warmed_ = true;
    return;
  }
  if (!graph_) {
    cudaGraph_t g = nullptr;
    LORDS_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    try {
      run_model(1, cache, 0, pos_.data());
    } catch (...) {
      cudaStreamEndCapture(s, &g);  // leave capture mode whatever went wrong
      if (g) cudaGraphDestroy(g);
      throw;
    }
    LORDS_CUDA_CHECK(cudaStreamEndCapture(s, &g));
    const cudaError_t e = cudaGraphInstantiate(&graph_, g, 0);
    cudaGraphDestroy(g);
    LORDS_CUDA_CHECK(e);
    graph_cache_ = cache.k(0);
  }
  LORDS_CUDA_CHECK(cudaGraphLaunch(graph_, s));
}

void GpuLlamaModel::forward(const int32_t* tokens, int64_t T, KvCacheBase& base_cache, float* logits,
                            LogitsMode mode) {
  auto* gpu_cache = dynamic_cast<GpuKvCache*>(&base_cache);
  LORDS_CHECK(gpu_cache != nullptr, ErrorKind::Usage,
              "[forward] the KV cache was made by a model on another device; this model runs on cuda");
  GpuKvCache& cache = *gpu_cache;
  check_forward(config_, sliding_window_, tokens, T, cache);
  const bool graph_step = graphs_ && T == 1;
  if (!graph_step) drop_graph();  // this call may regrow the buffers a graph points at
  reserve(T);
  const int64_t V = config_.vocab;
  const cudaStream_t s = stream_.get();
  ws_.tokens.upload(tokens, static_cast<size_t>(T), 0, s);
  const int64_t first = mode == LogitsMode::Last ? T - 1 : 0, rows = T - first;
  if (graph_step) {
    try {
      decode_graph_step(cache);
    } catch (const Error&) {  // a capture the driver refuses: eager from now on, same numbers
      cudaGetLastError();
      drop_graph();
      graphs_ = false;
      run_model(T, cache, first, nullptr);
    }
  } else {
    run_model(T, cache, first, nullptr);
  }
  LORDS_CUDA_CHECK(cudaMemcpyAsync(logits, ws_.logits.data(), static_cast<size_t>(rows * V) * sizeof(float),
                                   cudaMemcpyDeviceToHost, s));
  LORDS_CUDA_CHECK(cudaStreamSynchronize(s));
  cache.pos += T;
}

}  // namespace lords::runtime
