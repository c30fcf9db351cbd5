// Training attention kernels (see attention_train.h). Lane l of a warp owns head dims l, l + 32, ...
// (DPL = Dh/32 rounded up to a power of two, at most 16); dot products are a lane-local partial sum plus a
// butterfly reduction, so every lane ends with the full score.
#include "lords/train/gpu/attention_train.h"

#include <cmath>

#include "lords/cuda/cuda_check.h"
#include "lords/cuda/ops/kernel_util.cuh"
#include "lords/cuda/ops/launch_assert.h"

namespace lords::train::gpu {
namespace {

namespace rt = cuda::rt;
constexpr int kWarps = 4;  // warps (rows) per block

template <int DPL>
__device__ inline void load_row(float (&r)[DPL], const float* p, int64_t Dh, int lane) {
#pragma unroll
  for (int i = 0; i < DPL; ++i) {
    const int64_t d = lane + 32 * i;
    r[i] = d < Dh ? p[d] : 0.0f;
  }
}

template <int DPL>
__device__ inline float dot_row(const float (&a)[DPL], const float* p, int64_t Dh, int lane) {
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < DPL; ++i) {
    const int64_t d = lane + 32 * i;
    if (d < Dh) s += a[i] * p[d];
  }
  return rt::warp_reduce(s, rt::SumOp{});
}

template <int DPL>
__global__ void attention_fwd_kernel(float* out, float* lse, const float* q, const float* k, const float* v,
                                     AttentionTrainShape s, float scale) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;  // (b, t, h)
  if (row >= s.B * s.T * s.H) return;
  const int64_t h = row % s.H, bt = row / s.H, t = bt % s.T, b = bt / s.T;
  const int64_t g = h / (s.H / s.Hkv);
  float qr[DPL], acc[DPL];
  load_row(qr, q + row * s.Dh, s.Dh, lane);
#pragma unroll
  for (int i = 0; i < DPL; ++i) acc[i] = 0.0f;
  float mx = -INFINITY, sum = 0.0f;
  for (int64_t j = 0; j <= t; ++j) {
    const float sc = dot_row(qr, k + s.kv_at(b, j, g), s.Dh, lane) * scale;
    const float m_new = fmaxf(mx, sc);
    const float corr = expf(mx - m_new), p = expf(sc - m_new);
    sum = sum * corr + p;
    const float* vr = v + s.kv_at(b, j, g);
#pragma unroll
    for (int i = 0; i < DPL; ++i) {
      const int64_t d = lane + 32 * i;
      acc[i] = acc[i] * corr + (d < s.Dh ? p * vr[d] : 0.0f);
    }
    mx = m_new;
  }
  float* o = out + row * s.Dh;
#pragma unroll
  for (int i = 0; i < DPL; ++i) {
    const int64_t d = lane + 32 * i;
    if (d < s.Dh) o[d] = acc[i] / sum;
  }
  if (lane == 0) lse[row] = mx + logf(sum);
}

// dq[t,h] = scale sum_{j<=t} dS[t,j] k[j,g]; also writes delta[t,h] = dout . out.
template <int DPL>
__global__ void attention_dq_kernel(float* dq, float* delta, const float* dout, AttentionCache<float> c,
                                    AttentionTrainShape s, float scale) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (row >= s.B * s.T * s.H) return;
  const int64_t h = row % s.H, bt = row / s.H, t = bt % s.T, b = bt / s.T;
  const int64_t g = h / (s.H / s.Hkv);
  float qr[DPL], dor[DPL], acc[DPL];
  load_row(qr, c.q + row * s.Dh, s.Dh, lane);
  load_row(dor, dout + row * s.Dh, s.Dh, lane);
  const float dl = dot_row(dor, c.out + row * s.Dh, s.Dh, lane), l = c.lse[row];
  if (lane == 0) delta[row] = dl;
#pragma unroll
  for (int i = 0; i < DPL; ++i) acc[i] = 0.0f;
  for (int64_t j = 0; j <= t; ++j) {
    const float* kr = c.k + s.kv_at(b, j, g);
    const float p = expf(dot_row(qr, kr, s.Dh, lane) * scale - l);
    const float ds = p * (dot_row(dor, c.v + s.kv_at(b, j, g), s.Dh, lane) - dl);
#pragma unroll
    for (int i = 0; i < DPL; ++i) {
      const int64_t d = lane + 32 * i;
      if (d < s.Dh) acc[i] += ds * kr[d];
    }
  }
  float* o = dq + row * s.Dh;
#pragma unroll
  for (int i = 0; i < DPL; ++i) {
    const int64_t d = lane + 32 * i;
    if (d < s.Dh) o[d] = acc[i] * scale;
  }
}

// dk[j,g] = scale sum_{t>=j, h in g} dS[t,j] q[t,h],  dv[j,g] = sum_{t>=j, h in g} P[t,j] dout[t,h].
template <int DPL>
__global__ void attention_dkdv_kernel(float* dk, float* dv, const float* dout, const float* delta,
                                      AttentionCache<float> c, AttentionTrainShape s, float scale) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;  // (b, j, g)
  if (row >= s.B * s.T * s.Hkv) return;
  const int64_t g = row % s.Hkv, bj = row / s.Hkv, j = bj % s.T, b = bj / s.T;
  const int64_t group = s.H / s.Hkv;
  float kr[DPL], vr[DPL], ak[DPL], av[DPL];
  load_row(kr, c.k + row * s.Dh, s.Dh, lane);
  load_row(vr, c.v + row * s.Dh, s.Dh, lane);
#pragma unroll
  for (int i = 0; i < DPL; ++i) ak[i] = av[i] = 0.0f;
  for (int64_t t = j; t < s.T; ++t)
    for (int64_t h = g * group; h < (g + 1) * group; ++h) {
      const int64_t qrow = s.row(b, t, h);
      const float *qv = c.q + qrow * s.Dh, *dov = dout + qrow * s.Dh;
      const float p = expf(dot_row(kr, qv, s.Dh, lane) * scale - c.lse[qrow]);
      const float ds = p * (dot_row(vr, dov, s.Dh, lane) - delta[qrow]);
#pragma unroll
      for (int i = 0; i < DPL; ++i) {
        const int64_t d = lane + 32 * i;
        if (d < s.Dh) {
          ak[i] += ds * qv[d];
          av[i] += p * dov[d];
        }
      }
    }
#pragma unroll
  for (int i = 0; i < DPL; ++i) {
    const int64_t d = lane + 32 * i;
    if (d < s.Dh) {
      dk[row * s.Dh + d] = ak[i] * scale;
      dv[row * s.Dh + d] = av[i];
    }
  }
}

unsigned blocks_for(int64_t rows) { return static_cast<unsigned>((rows + kWarps - 1) / kWarps); }

void check(const AttentionTrainShape& s) {
  LORDS_ASSERT(s.B >= 0 && s.T >= 0 && s.H > 0 && s.Hkv > 0 && s.H % s.Hkv == 0);
  LORDS_ASSERT(s.Dh > 0 && s.Dh <= ops::kMaxHeadDim);
}

// Calls f.template operator()<DPL>() with the smallest lane width that covers Dh.
template <class F>
void with_dpl(int64_t Dh, F&& f) {
  if (Dh <= 32) return f.template operator()<1>();
  if (Dh <= 64) return f.template operator()<2>();
  if (Dh <= 128) return f.template operator()<4>();
  if (Dh <= 256) return f.template operator()<8>();
  return f.template operator()<16>();
}

}  // namespace

void attention_fwd(float* out, float* lse, const float* q, const float* k, const float* v,
                   const AttentionTrainShape& s, cudaStream_t stream) {
  check(s);
  const int64_t rows = s.B * s.T * s.H;
  if (rows == 0) return;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.Dh)));
  with_dpl(s.Dh, [&]<int DPL>() {
    attention_fwd_kernel<DPL><<<blocks_for(rows), kWarps * 32, 0, stream>>>(out, lse, q, k, v, s, scale);
  });
  LORDS_CUDA_CHECK_LAUNCH();
}

void attention_bwd(float* dq, float* dk, float* dv, float* delta, const float* dout, const AttentionCache<float>& c,
                   const AttentionTrainShape& s, cudaStream_t stream) {
  check(s);
  const int64_t rows = s.B * s.T * s.H, kv_rows = s.B * s.T * s.Hkv;
  if (rows == 0) return;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.Dh)));
  with_dpl(s.Dh, [&]<int DPL>() {
    attention_dq_kernel<DPL><<<blocks_for(rows), kWarps * 32, 0, stream>>>(dq, delta, dout, c, s, scale);
    attention_dkdv_kernel<DPL><<<blocks_for(kv_rows), kWarps * 32, 0, stream>>>(dk, dv, dout, delta, c, s, scale);
  });
  LORDS_CUDA_CHECK_LAUNCH();
}

}  // namespace lords::train::gpu
