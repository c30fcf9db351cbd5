// GpuQWeight::upload: checkpoint layout (row bitstream codes, fp32 B/A or block scales) -> the
// kernels' layout (fragment_layout.h codes; B (Np, rp), A^T (Kp, rp) and block scales (Np, Kp/G) in
// the activation type, zero-padded so padded rows and k contribute exactly nothing).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstring>

#include "lords/core/error.h"
#include "lords/cuda/qmatmul.h"
#include "lords/cuda/qmm/fragment_layout.h"
#include "lords/quant/pack.h"

namespace lords::cuda {
uint16_t act_bits(float v, ActType act) {
  uint16_t out;
  if (act == ActType::F16) {
    const __half h = __float2half_rn(v);
    std::memcpy(&out, &h, 2);
  } else {
    const __nv_bfloat16 h = __float2bfloat16_rn(v);
    std::memcpy(&out, &h, 2);
  }
  return out;
}

const char* act_type_name(ActType t) { return t == ActType::F16 ? "fp16" : "bf16"; }

GpuQWeight GpuQWeight::upload(const ops::QWeight& w, ActType act) {
  ops::qmatmul_check(w, 1);
  GpuQWeight g;
  g.kind_ = w.kind;
  g.act_ = act;
  g.N_ = w.N;
  g.K_ = w.K;
  g.bits_ = w.bits;
  g.Np_ = round_up(w.N, kRowTile);
  g.Kp_ = round_up(w.K, kCodeGroup);
  g.levels_.assign(w.levels, w.levels + (1 << w.bits));

  std::vector<uint8_t> codes(static_cast<size_t>(w.N * w.K));
  quant::unpack_codes(w.codes, w.N, w.K, w.bits, codes.data());
  g.codes_ = DeviceBuffer<uint8_t>(pack_fragment_codes(codes.data(), w.N, w.K, w.bits));

  if (w.kind == ops::QScaleKind::LowRank) {
    LORDS_CHECK(w.r <= 16 * qmm_max_rank_chunks(), ErrorKind::Unsupported,
                "[qmatmul gpu] rank {} exceeds the kernels' maximum of {}", w.r, 16 * qmm_max_rank_chunks());
    g.r_ = w.r;
    g.rp_ = static_cast<int>(round_up(w.r, 16));
    std::vector<uint16_t> B(static_cast<size_t>(g.Np_ * g.rp_), act_bits(0.f, act));
    std::vector<uint16_t> AT(static_cast<size_t>(g.Kp_ * g.rp_), act_bits(0.f, act));
    for (int64_t n = 0; n < w.N; ++n)
      for (int64_t j = 0; j < w.r; ++j) B[n * g.rp_ + j] = act_bits(w.B[n * w.r + j], act);
    for (int64_t j = 0; j < w.r; ++j)
      for (int64_t k = 0; k < w.K; ++k) AT[k * g.rp_ + j] = act_bits(w.A[j * w.K + k], act);
    g.B_ = DeviceBuffer<uint16_t>(B);
    g.AT_ = DeviceBuffer<uint16_t>(AT);
  } else {
    LORDS_CHECK(w.G % 16 == 0, ErrorKind::Unsupported,
                "[qmatmul gpu] block size {} is not a multiple of 16", w.G);
    g.G_ = w.G;
    const int64_t nb_src = (w.K + w.G - 1) / w.G, nb = (g.Kp_ + w.G - 1) / w.G;
    std::vector<uint16_t> S(static_cast<size_t>(g.Np_ * nb), act_bits(0.f, act));
    for (int64_t n = 0; n < w.N; ++n)
      for (int64_t b = 0; b < nb_src; ++b) S[n * nb + b] = act_bits(w.scales[n * nb_src + b], act);
    g.scales_ = DeviceBuffer<uint16_t>(S);
  }
  return g;
}

GpuQWeight GpuQWeight::clone() const {
  GpuQWeight c;
  c.kind_ = kind_, c.act_ = act_, c.N_ = N_, c.K_ = K_, c.Np_ = Np_, c.Kp_ = Kp_, c.r_ = r_, c.G_ = G_;
  c.rp_ = rp_, c.bits_ = bits_, c.levels_ = levels_;
  c.codes_ = codes_.clone();
  c.B_ = B_.clone();
  c.AT_ = AT_.clone();
  c.scales_ = scales_.clone();
  return c;
}

int64_t GpuQWeight::stream_bytes() const {
  const int64_t codes = Np_ * Kp_ * bits_ / 8;
  const int64_t scales = kind_ == ops::QScaleKind::LowRank ? int64_t(rp_) * (Np_ + Kp_) : Np_ * ((Kp_ + G_ - 1) / G_);
  return codes + 2 * scales;
}

GpuQWeight::View GpuQWeight::view() const {
  View v{};
  v.kind = kind_;
  v.bits = bits_;
  v.N = N_, v.K = K_, v.Np = Np_, v.Kp = Kp_;
  v.rp = rp_;
  v.r = int(r_);
  v.G = static_cast<int>(G_);
  v.codes = reinterpret_cast<const uint4*>(codes_.data());
  v.B = B_.data();
  v.AT = AT_.data();
  v.scales = scales_.data();
  for (size_t i = 0; i < levels_.size(); ++i) v.levels[i] = levels_[i];
  return v;
}

}  // namespace lords::cuda
