// load_delta / resolve_layer of delta_spectrum.h: ΔW of one linear from a LoRDS PEFT checkpoint,
// QLoRA adapters or a dense model, against a base checkpoint. Everything in fp64.
#include <cblas.h>

#include <cstring>
#include <filesystem>

#include "lords/core/error.h"
#include "lords/engine/delta_spectrum.h"
#include "lords/io/model_source.h"
#include "lords/io/safetensors.h"
#include "lords/model/weight_table.h"

namespace lords::engine {
namespace {

namespace fs = std::filesystem;

constexpr const char* kAdaptersFile = "adapters.safetensors";

// C (N, K) = alpha B (N, r) A (r, K) + beta C, in fp64 (inputs are exact in fp64).
void gemm_f64(std::vector<double>* C,
              const std::vector<float>& B,
              const std::vector<float>& A,
              int64_t N,
              int64_t r,
              int64_t K,
              double alpha,
              double beta) {
  const std::vector<double> b(B.begin(), B.end()), a(A.begin(), A.end());
  C->resize(static_cast<size_t>(N * K));
  cblas_dgemm(CblasRowMajor,
              CblasNoTrans,
              CblasNoTrans,
              static_cast<int>(N),
              static_cast<int>(K),
              static_cast<int>(r),
              alpha,
              b.data(),
              static_cast<int>(r),
              a.data(),
              static_cast<int>(K),
              beta,
              C->data(),
              static_cast<int>(K));
}

// W_hat = levels[Q] ⊙ S with S = BA (lords) or the block scales (rtn), in fp64.
std::vector<double> dequantize_f64(const QuantizedLinear& q, const quant::Codebook& cb) {
  std::vector<double> W;
  const std::vector<uint8_t>& codes = q.codes();
  if (q.method == Method::Lords) {
    gemm_f64(&W, q.lowrank.B, q.lowrank.A, q.N, q.lowrank.r, q.K, 1.0, 0.0);
  } else {
    const int64_t nb = (q.K + q.rtn.G - 1) / q.rtn.G;
    W.resize(static_cast<size_t>(q.N * q.K));
    for (int64_t n = 0; n < q.N; ++n)
      for (int64_t k = 0; k < q.K; ++k)
        W[static_cast<size_t>(n * q.K + k)] =
            q.rtn.scales[static_cast<size_t>(n * nb + k / q.rtn.G)];
  }
  for (size_t i = 0; i < W.size(); ++i) W[i] *= cb.levels[codes[i]];
  return W;
}

std::string shape_text(int64_t N, int64_t K) {
  return fmt::format("[{}, {}]", N, K);
}

// The first stored tensor of layer name whose dtype, shape or bytes differ between a and b; "" if
// none.
std::string first_difference(const Checkpoint& a, const Checkpoint& b, const std::string& name) {
  for (const char* suffix : {".qcodes", ".qscales", ".lords_B", ".lords_A"}) {
    const std::string t = name + suffix;
    if (a.index().contains(t) != b.index().contains(t)) return t;
    if (!a.index().contains(t)) continue;
    const io::TensorInfo &ia = a.index().at(t), &ib = b.index().at(t);
    if (ia.dtype != ib.dtype || ia.shape != ib.shape ||
        std::memcmp(a.index().raw(t), b.index().raw(t), ia.nbytes) != 0)
      return t;
  }
  return "";
}

bool is_lords_checkpoint(const std::string& dir) {
  const std::string weights = dir + "/" + kWeightsFile;
  if (!fs::is_directory(dir) || !fs::exists(weights)) return false;
  io::TensorIndex index;
  const auto meta = io::read_safetensors(weights, &index);
  const auto it = meta.find("format");
  return it != meta.end() && it->second == kFormatName;
}


void lora_delta(const Checkpoint& base, const std::string& tuned, Delta* d) {
  const std::string path = tuned + "/" + kAdaptersFile;
  io::TensorIndex index;
  const auto meta = io::read_safetensors(path, &index);
  const std::string a_name = d->layer + ".lora_A", b_name = d->layer + ".lora_B";
  for (const std::string& t : {a_name, b_name})
    LORDS_CHECK(index.contains(t),
                ErrorKind::Format,
                "{}: no LoRA adapter for '{}' (tensor '{}' missing)",
                path,
                d->layer,
                t);
  const Shape& sa = index.at(a_name).shape;
  const Shape& sb = index.at(b_name).shape;
  LORDS_CHECK(sa.size() == 2 && sa[0] >= 1 && sa[1] == d->K,
              ErrorKind::BadShape,
              "{}: '{}' has shape {}, expected [r, {}] (the layer is {} in {})",
              path,
              a_name,
              shape_str(sa),
              d->K,
              shape_text(d->N, d->K),
              base.weights_path());
  const int64_t r = sa[0];
  LORDS_CHECK(sb == Shape({d->N, r}),
              ErrorKind::BadShape,
              "{}: '{}' has shape {}, expected {}",
              path,
              b_name,
              shape_str(sb),
              shape_text(d->N, r));
  const double alpha = io::metadata_number(meta, "lora.alpha", "lora_alpha", path);
  const double rank = io::metadata_number(meta, "lora.rank", "lora_rank", path);
  LORDS_CHECK(rank == static_cast<double>(r),
              ErrorKind::Format,
              "{}: metadata says rank {} but '{}' has {} rows",
              path,
              rank,
              a_name,
              r);
  // The adapters are only meaningful on the base they were trained on.
  if (fs::exists(tuned + "/" + kWeightsFile)) {
    const Checkpoint own(tuned);
    LORDS_CHECK(own.is_quantized(d->layer),
                ErrorKind::Format,
                "{}: no quantized layer '{}'",
                own.weights_path(),
                d->layer);
    const std::string diff = first_difference(base, own, d->layer);
    LORDS_CHECK(diff.empty(),
                ErrorKind::Format,
                "{}: tensor '{}' differs from {}: the adapters belong to another base",
                own.weights_path(),
                diff,
                base.weights_path());
  }
  d->kind = DeltaKind::Lora;
  d->adapter_rank = r;
  gemm_f64(&d->dW,
           index.load_f32(b_name).data,
           index.load_f32(a_name).data,
           d->N,
           r,
           d->K,
           alpha / rank,
           0.0);
}

void lords_delta(const Checkpoint& base,
                 const QuantizedLinear& qb,
                 const std::string& tuned,
                 Delta* d) {
  LORDS_CHECK(base.method() == Method::Lords,
              ErrorKind::Usage,
              "{}: method {}, but {} is a LoRDS checkpoint: a LoRDS update needs a LoRDS base",
              base.weights_path(),
              method_name(base.method()),
              tuned);
  const Checkpoint tc(tuned);
  const std::string& tp = tc.weights_path();
  LORDS_CHECK(tc.method() == Method::Lords,
              ErrorKind::Usage,
              "{}: method {}, expected lords like {}",
              tp,
              method_name(tc.method()),
              base.weights_path());
  LORDS_CHECK(tc.codebook().levels == base.codebook().levels,
              ErrorKind::Format,
              "{}: codebook {} differs from {} in {}",
              tp,
              tc.codebook().name(),
              base.codebook().name(),
              base.weights_path());
  LORDS_CHECK(
      tc.is_quantized(d->layer), ErrorKind::Format, "{}: no quantized layer '{}'", tp, d->layer);
  const QuantizedLinear qt = tc.load_linear(d->layer);
  LORDS_CHECK(qt.N == d->N && qt.K == d->K,
              ErrorKind::BadShape,
              "{}: '{}' has shape {}, expected {} as in {}",
              tp,
              d->layer,
              shape_text(qt.N, qt.K),
              shape_text(d->N, d->K),
              base.weights_path());
  int64_t differ = 0;
  for (size_t i = 0; i < qt.lords_codes.size(); ++i)
    differ += qt.lords_codes[i] != qb.lords_codes[i] ? 1 : 0;
  LORDS_CHECK(
      differ == 0,
      ErrorKind::Format,
      "{}: {} of {} codes of '{}' differ from {}: LoRDS PEFT trains B and A on the base's codes",
      tp,
      differ,
      d->N * d->K,
      d->layer,
      base.weights_path());
  d->kind = DeltaKind::Lords;
  d->adapter_rank = qt.lowrank.r;
  gemm_f64(&d->dW, qt.lowrank.B, qt.lowrank.A, d->N, qt.lowrank.r, d->K, 1.0, 0.0);
  gemm_f64(&d->dW, qb.lowrank.B, qb.lowrank.A, d->N, qb.lowrank.r, d->K, -1.0, 1.0);
  for (size_t i = 0; i < d->dW.size(); ++i) d->dW[i] *= base.codebook().levels[qb.lords_codes[i]];
}

void dense_delta(const Checkpoint& base,
                 const QuantizedLinear& qb,
                 const std::string& tuned,
                 Delta* d) {
  const io::ModelSource src = io::open_model(tuned);
  const model::ModelConfig mc = model::parse_model_config(src.config, src.config_path);
  for (const model::ResolvedWeight& w : model::resolve_weights(src, mc)) {
    if (w.spec.hf != d->layer) continue;
    const HostTensor t = model::load_weight(src, w);
    LORDS_CHECK(t.shape == Shape({d->N, d->K}),
                ErrorKind::BadShape,
                "{}: '{}' has shape {}, expected {} as in {}",
                tuned,
                d->layer,
                shape_str(t.shape),
                shape_text(d->N, d->K),
                base.weights_path());
    d->kind = DeltaKind::Dense;
    d->dW = dequantize_f64(qb, base.codebook());
    for (size_t i = 0; i < d->dW.size(); ++i) d->dW[i] = static_cast<double>(t.data[i]) - d->dW[i];
    return;
  }
  LORDS_FAIL(ErrorKind::Format, "{}: no tensor '{}'", tuned, d->layer);
}

}  // namespace

const char* delta_kind_name(DeltaKind kind) {
  return kind == DeltaKind::Lords ? "lords" : kind == DeltaKind::Lora ? "lora" : "dense";
}

std::string resolve_layer(const Checkpoint& base, const std::string& layer) {
  if (base.is_quantized(layer)) return layer;
  if (base.is_quantized(layer + ".weight")) return layer + ".weight";
  try {
    const model::ModelConfig mc =
        model::parse_model_config(base.config(), base.dir() + "/config.json");
    for (const model::WeightSpec& w : model::weight_table(mc))
      if ((w.internal == layer || w.internal == layer + ".weight") && base.is_quantized(w.hf))
        return w.hf;
  } catch (const Error&) {
    // A config the weight table does not know: only HF names can be matched.
  }
  const std::vector<std::string>& names = base.quantized_names();
  std::string some;
  for (size_t i = 0; i < names.size() && i < 3; ++i) some += (i ? ", " : "") + names[i];
  LORDS_FAIL(ErrorKind::Usage,
             "{}: no quantized layer '{}' (it has {}: {}{})",
             base.weights_path(),
             layer,
             names.size(),
             some,
             names.size() > 3 ? ", ..." : "");
}

Delta load_delta(const Checkpoint& base, const std::string& tuned_path, const std::string& layer) {
  LORDS_CHECK(fs::exists(tuned_path), ErrorKind::Io, "{}: no such file or directory", tuned_path);
  Delta d;
  d.layer = resolve_layer(base, layer);
  const QuantizedLinear qb = base.load_linear(d.layer);
  d.N = qb.N;
  d.K = qb.K;
  if (fs::is_directory(tuned_path) && fs::exists(tuned_path + "/" + kAdaptersFile))
    lora_delta(base, tuned_path, &d);
  else if (is_lords_checkpoint(tuned_path))
    lords_delta(base, qb, tuned_path, &d);
  else
    dense_delta(base, qb, tuned_path, &d);
  return d;
}

}  // namespace lords::engine
