// GpuTrainLinear (see gpu_train_linear.h). Row-major GEMMs through cuda::gemm_rm: a RowMajor operand is
// {pointer, leading dimension, op}; a column slice of a row-major matrix is its pointer offset with the
// full leading dimension.
#include "lords/train/gpu/gpu_train_linear.h"

#include <algorithm>

#include "lords/core/error.h"
#include "lords/cuda/ops/add.h"
#include "lords/cuda/quant/gemm_rm.h"
#include "lords/quant/blockwise.h"
#include "lords/quant/codebook.h"
#include "lords/quant/pack.h"
#include "lords/train/gpu/train_kernels.h"

namespace lords::train {
namespace {

using cuda::RowMajor;
constexpr cublasOperation_t kN = CUBLAS_OP_N, kT = CUBLAS_OP_T;

cuda::DeviceBuffer<float> upload_vec(const std::vector<float>& v) { return cuda::DeviceBuffer<float>(v); }
cuda::DeviceBuffer<float> zeros(size_t n) {
  cuda::DeviceBuffer<float> b(n);
  b.zero();
  return b;
}

}  // namespace

GpuTrainLinear GpuTrainLinear::upload(const TrainableLinear<float>& h,
                                      std::shared_ptr<const cuda::DeviceBuffer<float>> shared_dense) {
  GpuTrainLinear l;
  l.kind_ = h.kind();
  l.N_ = h.N();
  l.K_ = h.K();
  if (h.bias()) l.bias_ = upload_vec(*h.bias());
  if (l.kind_ == LinearKind::Dense) {
    l.dense_ = shared_dense ? std::move(shared_dense)
                            : std::make_shared<const cuda::DeviceBuffer<float>>(*h.dense_weight());
    return l;
  }
  const ops::QWeight q = h.qweight();
  l.scale_kind_ = q.kind;
  l.bits_ = q.bits;
  l.levels_ = upload_vec(h.levels());
  l.cb_ = cuda::gpu_codebook(quant::codebook_from_levels(quant::CodebookKind::NF, q.bits, h.levels()));
  if (l.kind_ != LinearKind::FakeQuant) {
    std::vector<uint8_t> codes(static_cast<size_t>(l.N_ * l.K_));
    quant::unpack_codes(q.codes, l.N_, l.K_, q.bits, codes.data());
    l.codes_ = cuda::DeviceBuffer<uint8_t>(codes);
  }
  if (q.kind == ops::QScaleKind::LowRank) {
    l.r_ = q.r;
    l.B_ = upload_vec(h.B());
    l.A_ = upload_vec(h.A());
  } else {
    l.G_ = q.G;
    l.scales_ = cuda::DeviceBuffer<float>(
        std::vector<float>(q.scales, q.scales + l.N_ * quant::num_blocks(l.K_, l.G_)));
  }
  if (l.kind_ == LinearKind::Lords || l.kind_ == LinearKind::FakeQuant) {
    l.gB_ = zeros(l.B_.size());
    l.gA_ = zeros(l.A_.size());
  }
  if (l.kind_ == LinearKind::FakeQuant) {
    l.W_ = upload_vec(h.latent());
    l.gW_ = zeros(l.W_.size());
  }
  if (l.kind_ == LinearKind::Lora) {
    l.lora_r_ = h.lora_rank();
    l.lora_scale_ = h.lora_alpha() / static_cast<float>(h.lora_rank());
    l.lA_ = upload_vec(h.lora_A());
    l.lB_ = upload_vec(h.lora_B());
    l.glA_ = zeros(l.lA_.size());
    l.glB_ = zeros(l.lB_.size());
  }
  return l;
}

void GpuTrainLinear::grow_scratch(const GpuLinearContext& ctx, int64_t M) const {
  GpuLinearScratch& s = *ctx.scratch;
  if (kind_ != LinearKind::Dense) s.w.reserve(static_cast<size_t>(N_ * K_));
  if (kind_ == LinearKind::Lora) s.lora.reserve(static_cast<size_t>(M * lora_r_));
}

const float* GpuTrainLinear::weight(const GpuLinearContext& ctx, const uint8_t* fq_codes,
                                    uint8_t* choose_into) const {
  if (kind_ == LinearKind::Dense) return dense_->data();
  float* W = ctx.scratch->w.data();
  const int64_t n = N_ * K_;
  if (scale_kind_ == ops::QScaleKind::Block) {
    gpu::dequant_block(W, codes_.data(), levels_.data(), scales_.data(), N_, K_, G_, ctx.stream);
    return W;
  }
  // S = B A, then W_hat = level[Q] S.
  cuda::gemm_rm(ctx.blas, N_, K_, r_, RowMajor{B_.data(), r_, kN}, RowMajor{A_.data(), K_, kN}, W, K_);
  if (kind_ == LinearKind::FakeQuant && choose_into)
    gpu::fake_quant_codes(W, choose_into, W_.data(), cb_, n, ctx.stream);
  else
    gpu::mul_by_levels(W, kind_ == LinearKind::FakeQuant ? fq_codes : codes_.data(), levels_.data(), n, ctx.stream);
  return W;
}

void GpuTrainLinear::forward(float* Y, GpuLinearCache& cache, const float* X, int64_t M,
                             const GpuLinearContext& ctx) const {
  grow_scratch(ctx, M);
  const bool fq = kind_ == LinearKind::FakeQuant;
  if (fq) cache.codes.reserve(static_cast<size_t>(N_ * K_));
  const float* W = weight(ctx, nullptr, fq ? cache.codes.data() : nullptr);
  cuda::gemm_rm(ctx.blas, M, N_, K_, RowMajor{X, K_, kN}, RowMajor{W, K_, kT}, Y, N_);
  if (!bias_.empty()) cuda::add_bias(Y, bias_.data(), M, N_, ctx.stream);
  if (kind_ == LinearKind::Lora) {  // Y += s (X A^T) B^T, keeping X A^T
    const int64_t r = lora_r_;
    cache.xa.reserve(static_cast<size_t>(M * r));
    cuda::gemm_rm(ctx.blas, M, r, K_, RowMajor{X, K_, kN}, RowMajor{lA_.data(), K_, kT}, cache.xa.data(), r);
    cuda::gemm_rm(ctx.blas, M, N_, r, RowMajor{cache.xa.data(), r, kN}, RowMajor{lB_.data(), r, kT}, Y, N_,
                  lora_scale_, 1.0f);
  }
}

void GpuTrainLinear::backward(float* dX, const float* dY, const float* X, const GpuLinearCache& cache, int64_t M,
                              const GpuLinearContext& ctx) {
  grow_scratch(ctx, M);
  const bool fq = kind_ == LinearKind::FakeQuant;
  LORDS_ASSERT(!fq || cache.codes.size() >= static_cast<size_t>(N_ * K_));
  const uint8_t* codes = fq ? cache.codes.data() : codes_.data();
  const float* W = weight(ctx, codes, nullptr);
  cuda::gemm_rm(ctx.blas, M, K_, N_, RowMajor{dY, N_, kN}, RowMajor{W, K_, kN}, dX, K_);  // dX = dY W_hat
  if (kind_ == LinearKind::Lords || fq) {
    // dW_hat = dY^T X by tiles of rows; each becomes dS = dW_hat (.) level[Q] and feeds dB, dA.
    const int64_t rows = std::clamp<int64_t>(ctx.tile_elems / K_, 1, N_), r = r_;
    GpuLinearScratch& s = *ctx.scratch;
    s.tile.reserve(static_cast<size_t>(rows * K_));
    const bool ste = fq && ctx.qat_phase == QatPhase::Joint;
    if (ste) s.tile_s.reserve(static_cast<size_t>(rows * K_));
    const float lo = cb_.levels[0], hi = cb_.levels[cb_.n_levels - 1];
    for (int64_t n0 = 0; n0 < N_; n0 += rows) {
      const int64_t nt = std::min(rows, N_ - n0);
      float* G = s.tile.data();
      cuda::gemm_rm(ctx.blas, nt, K_, M, RowMajor{dY + n0, N_, kT}, RowMajor{X, K_, kN}, G, K_);
      if (ste) {
        cuda::gemm_rm(ctx.blas, nt, K_, r, RowMajor{B_.data() + n0 * r, r, kN}, RowMajor{A_.data(), K_, kN},
                      s.tile_s.data(), K_);
        gpu::ste_accumulate(gW_.data() + n0 * K_, G, s.tile_s.data(), W_.data() + n0 * K_, lo, hi,
                            ctx.ste == SteRange::ZeroOutside, nt * K_, ctx.stream);
      }
      gpu::mul_by_levels(G, codes + n0 * K_, levels_.data(), nt * K_, ctx.stream);
      cuda::gemm_rm(ctx.blas, nt, r, K_, RowMajor{G, K_, kN}, RowMajor{A_.data(), K_, kT}, gB_.data() + n0 * r, r,
                    1.0f, 1.0f);
      cuda::gemm_rm(ctx.blas, r, K_, nt, RowMajor{B_.data() + n0 * r, r, kT}, RowMajor{G, K_, kN}, gA_.data(), K_,
                    1.0f, 1.0f);
    }
  }
  if (kind_ == LinearKind::Lora) {
    const int64_t r = lora_r_;
    const float sc = lora_scale_;
    float* dYB = ctx.scratch->lora.data();  // (M, r)
    cuda::gemm_rm(ctx.blas, M, r, N_, RowMajor{dY, N_, kN}, RowMajor{lB_.data(), r, kN}, dYB, r);
    cuda::gemm_rm(ctx.blas, M, K_, r, RowMajor{dYB, r, kN}, RowMajor{lA_.data(), K_, kN}, dX, K_, sc, 1.0f);
    cuda::gemm_rm(ctx.blas, N_, r, M, RowMajor{dY, N_, kT}, RowMajor{cache.xa.data(), r, kN}, glB_.data(), r, sc,
                  1.0f);
    cuda::gemm_rm(ctx.blas, r, K_, M, RowMajor{dYB, r, kT}, RowMajor{X, K_, kN}, glA_.data(), K_, sc, 1.0f);
  }
}

std::vector<GpuParam> GpuTrainLinear::params() {
  std::vector<GpuParam> p;
  auto add = [&](cuda::DeviceBuffer<float>& v, cuda::DeviceBuffer<float>& g) {
    p.push_back({v.data(), g.data(), static_cast<int64_t>(v.size())});
  };
  if (kind_ == LinearKind::Lords || kind_ == LinearKind::FakeQuant) {  // TrainableLinear::params() order
    add(B_, gB_);
    add(A_, gA_);
  }
  if (kind_ == LinearKind::FakeQuant) add(W_, gW_);
  if (kind_ == LinearKind::Lora) {
    add(lA_, glA_);
    add(lB_, glB_);
  }
  return p;
}

void GpuTrainLinear::zero_grad(cudaStream_t stream) {
  for (cuda::DeviceBuffer<float>* g : {&gB_, &gA_, &gW_, &glA_, &glB_}) g->zero(stream);
}

}  // namespace lords::train
