// TrainModel outputs: the tuned lords checkpoint (Peft, Qat), the Qlora adapters file and its
// loader, and the named parameter arrays of a resumable run. See train_model.h.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <initializer_list>

#include "lords/core/dtype.h"
#include "lords/core/error.h"
#include "lords/engine/checkpoint.h"
#include "lords/engine/write_support.h"
#include "lords/io/safetensors.h"
#include "lords/quant/nearest_kernel.h"
#include "lords/quant/pack.h"
#include "lords/train/train_model.h"

namespace lords::train {
namespace {

namespace fs = std::filesystem;

template <class Real>
std::vector<float> to_float(const std::vector<Real>& v) {
  return std::vector<float>(v.begin(), v.end());
}

// v as the checkpoint will hold it: rounded to the storage dtype and back.
std::vector<float> stored_values(const std::vector<float>& v, DType dtype) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (dtype == DType::F16)
      out[i] = fp16_to_f32(f32_to_fp16(v[i]));
    else if (dtype == DType::BF16)
      out[i] = bf16_to_f32(f32_to_bf16(v[i]));
    else
      out[i] = v[i];
  }
  return out;
}

DType stored_dtype(const io::TensorIndex& index, const std::string& name) {
  DType t = DType::F32;
  LORDS_CHECK(dtype_from_name(index.at(name).dtype, &t),
              ErrorKind::Format,
              "[save] tensor '{}' has dtype {}, expected a float type",
              name,
              index.at(name).dtype);
  return t;
}

// The codes of a QAT result: nearest(W / S) with S = B A summed in j order in fp32 (the
// dequantization order of docs/FORMAT.md) from the stored B, A, by the quantizer's own search.
// W (N, K), B (N, r), A (r, K); returns (N, K) codes.
std::vector<uint8_t> qat_codes(const std::vector<float>& W,
                               const std::vector<float>& B,
                               const std::vector<float>& A,
                               int64_t N,
                               int64_t K,
                               int64_t r,
                               const quant::Codebook& cb) {
  std::vector<uint8_t> codes(static_cast<size_t>(N * K));
  std::vector<float> S(static_cast<size_t>(K));
  const uint8_t zero = cb.nearest(0.0f);
  for (int64_t n = 0; n < N; ++n) {
    std::fill(S.begin(), S.end(), 0.0f);
    for (int64_t j = 0; j < r; ++j) {
      const float b = B[static_cast<size_t>(n * r + j)];
      for (int64_t k = 0; k < K; ++k)
        S[static_cast<size_t>(k)] += b * A[static_cast<size_t>(j * K + k)];
    }
    quant::detail::nearest_codes(W.data() + n * K, S.data(), 1, K, cb, zero, codes.data() + n * K);
  }
  return codes;
}

// Copies every regular file of `from` except those named in `skip` into `to`.
void copy_side_files(const std::string& from,
                     const std::string& to,
                     std::initializer_list<const char*> skip) {
  for (const auto& entry : fs::directory_iterator(from)) {
    const std::string f = entry.path().filename().string();
    const bool skipped =
        std::any_of(skip.begin(), skip.end(), [&](const char* s) { return f == s; });
    if (!skipped && entry.is_regular_file()) copy_file_atomic(entry.path().string(), to + "/" + f);
  }
}

}  // namespace

template <class Real>
void TrainModel<Real>::save(const std::string& out_dir, AtomicDir::Existing existing) const {
  if (opt_.mode == TuneMode::Qlora)
    save_qlora(out_dir, existing);
  else
    save_lords(out_dir, existing);
}

template <class Real>
void TrainModel<Real>::save_lords(const std::string& out_dir, AtomicDir::Existing existing) const {
  const engine::Checkpoint ck(source_dir_);
  io::TensorIndex index;
  std::map<std::string, std::string> meta = io::read_safetensors(ck.weights_path(), &index);
  meta["lords.tuned"] = tune_mode_name(opt_.mode);
  // New bytes of the trained tensors; everything else is copied byte for byte.
  std::map<std::string, std::vector<uint8_t>> replaced;
  for (const TrainableLinear<Real>* l : linears()) {
    if (l->kind() != LinearKind::Lords && l->kind() != LinearKind::FakeQuant) continue;
    const std::string& name = l->name();
    const DType bt = stored_dtype(index, name + ".lords_B"),
                at = stored_dtype(index, name + ".lords_A");
    const std::vector<float> B = stored_values(to_float(l->B()), bt);
    const std::vector<float> A = stored_values(to_float(l->A()), at);
    replaced[name + ".lords_B"] = engine::encode_floats(B, bt);
    replaced[name + ".lords_A"] = engine::encode_floats(A, at);
    if (l->kind() == LinearKind::FakeQuant) {
      // Codes chosen for the scales as stored, so the runtime dequantizes exactly the weight
      // whose codes the final latent W selects (engine::quantize_linear does the same).
      const std::vector<uint8_t> codes =
          qat_codes(to_float(l->latent()), B, A, l->N(), l->K(), l->rank(), ck.codebook());
      replaced[name + ".qcodes"] = quant::pack_codes(codes.data(), l->N(), l->K(), l->bits());
    }
  }
  // Same tensors in the same file order as the source.
  std::vector<const io::TensorInfo*> order;
  for (const auto& [name, info] : index.all()) order.push_back(&info);
  std::sort(order.begin(), order.end(), [](const io::TensorInfo* a, const io::TensorInfo* b) {
    return a->offset < b->offset;
  });
  AtomicDir out(out_dir, existing);
  io::SafetensorsWriter writer(out.file(engine::kWeightsFile));
  for (const io::TensorInfo* t : order) {
    DType dt = DType::F32;
    LORDS_ASSERT(dtype_from_name(t->dtype, &dt));  // read_safetensors accepted it
    writer.declare(t->name, dt, t->shape);
  }
  writer.set_metadata(meta);
  writer.begin();
  for (const io::TensorInfo* t : order) {
    const auto it = replaced.find(t->name);
    if (it == replaced.end()) {
      writer.write(t->name, index.raw(t->name), t->nbytes);
    } else {
      LORDS_ASSERT(it->second.size() == t->nbytes);
      writer.write(t->name, it->second.data(), it->second.size());
    }
  }
  writer.commit();
  copy_side_files(source_dir_, out.tmp_path(), {engine::kWeightsFile, kAdaptersFile});
  out.commit();
}

template <class Real>
void TrainModel<Real>::save_qlora(const std::string& out_dir, AtomicDir::Existing existing) const {
  AtomicDir out(out_dir, existing);
  // The base checkpoint unchanged (model.safetensors included), then the adapters beside it.
  copy_side_files(source_dir_, out.tmp_path(), {kAdaptersFile});
  io::SafetensorsWriter writer(out.file(kAdaptersFile));
  std::vector<const TrainableLinear<Real>*> lora;
  for (const TrainableLinear<Real>* l : linears())
    if (l->kind() == LinearKind::Lora) lora.push_back(l);
  LORDS_ASSERT(!lora.empty());
  for (const TrainableLinear<Real>* l : lora) {
    writer.declare(l->name() + ".lora_A", DType::F32, {l->lora_rank(), l->K()});
    writer.declare(l->name() + ".lora_B", DType::F32, {l->N(), l->lora_rank()});
  }
  writer.set_metadata({{"format", kAdaptersFormat},
                       {"format_version", "1"},
                       {"lora.rank", std::to_string(lora[0]->lora_rank())},
                       {"lora.alpha", nlohmann::json(lora[0]->lora_alpha()).dump()}});
  writer.begin();
  for (const TrainableLinear<Real>* l : lora) {
    const std::vector<float> A = to_float(l->lora_A()), B = to_float(l->lora_B());
    writer.write(l->name() + ".lora_A", A.data(), A.size() * sizeof(float));
    writer.write(l->name() + ".lora_B", B.data(), B.size() * sizeof(float));
  }
  writer.commit();
  out.commit();
}

template <class Real>
void TrainModel<Real>::load_adapters(const std::string& path) {
  io::TensorIndex index;
  const std::map<std::string, std::string> meta = io::read_safetensors(path, &index);
  const auto value = [&](const char* key) -> std::string {
    const auto it = meta.find(key);
    LORDS_CHECK(it != meta.end(), ErrorKind::Format, "{}: metadata key '{}' missing", path, key);
    return it->second;
  };
  LORDS_CHECK(value("format") == kAdaptersFormat,
              ErrorKind::Format,
              "{}: not a LoRA adapters file (metadata format is not '{}')",
              path,
              kAdaptersFormat);
  int64_t r = 0;
  float alpha = 0;
  try {
    const nlohmann::json jr = nlohmann::json::parse(value("lora.rank"));
    const nlohmann::json ja = nlohmann::json::parse(value("lora.alpha"));
    r = jr.get<int64_t>();
    alpha = ja.get<float>();
  } catch (const nlohmann::json::exception&) {
    LORDS_FAIL(ErrorKind::Format, "{}: metadata lora.rank / lora.alpha are not numbers", path);
  }
  LORDS_CHECK(r >= 1 && alpha > 0,
              ErrorKind::Format,
              "{}: LoRA rank {} and alpha {} must be positive",
              path,
              r,
              alpha);
  size_t expected = 0;
  for (TrainableLinear<Real>* l : linears()) {
    if (l->kind() != LinearKind::Lora) continue;
    expected += 2;
    const auto load = [&](const std::string& name, const Shape& shape) {
      LORDS_CHECK(index.contains(name), ErrorKind::Format, "{}: tensor '{}' missing", path, name);
      HostTensor t = index.load_f32(name);
      LORDS_CHECK(t.shape == shape,
                  ErrorKind::Format,
                  "{}: tensor '{}' has shape {}, expected {}",
                  path,
                  name,
                  shape_str(t.shape),
                  shape_str(shape));
      return t;
    };
    const HostTensor A = load(l->name() + ".lora_A", {r, l->K()});
    const HostTensor B = load(l->name() + ".lora_B", {l->N(), r});
    l->set_lora(r, alpha, A.data.data(), B.data.data(), 0);
  }
  LORDS_CHECK(index.all().size() == expected,
              ErrorKind::Format,
              "{}: holds {} tensors, expected {} (lora_A and lora_B of each quantized linear)",
              path,
              index.all().size(),
              expected);
  opt_.lora_rank = r;
  opt_.lora_alpha = alpha;
}

template <class Real>
NamedArrays TrainModel<Real>::param_arrays() const {
  NamedArrays out;
  for (const TrainableLinear<Real>* l : linears())
    for (const ParamRef<const Real>& p : l->params())
      out["param." + p.name] = std::vector<float>(p.value, p.value + p.size);
  return out;
}

template <class Real>
void TrainModel<Real>::load_param_arrays(const NamedArrays& arrays) {
  const std::vector<ParamRef<Real>> ps = params();
  for (const ParamRef<Real>& p : ps) {
    const auto it = arrays.find("param." + p.name);
    LORDS_CHECK(it != arrays.end(), ErrorKind::Format, "[resume] parameter '{}' missing", p.name);
    LORDS_CHECK(static_cast<int64_t>(it->second.size()) == p.size,
                ErrorKind::Format,
                "[resume] parameter '{}' has {} values, expected {}",
                p.name,
                it->second.size(),
                p.size);
  }
  for (const ParamRef<Real>& p : ps) {
    const std::vector<float>& v = arrays.at("param." + p.name);
    std::copy(v.begin(), v.end(), p.value);
  }
}

template void TrainModel<float>::save(const std::string&, AtomicDir::Existing) const;
template void TrainModel<double>::save(const std::string&, AtomicDir::Existing) const;
template void TrainModel<float>::save_lords(const std::string&, AtomicDir::Existing) const;
template void TrainModel<double>::save_lords(const std::string&, AtomicDir::Existing) const;
template void TrainModel<float>::save_qlora(const std::string&, AtomicDir::Existing) const;
template void TrainModel<double>::save_qlora(const std::string&, AtomicDir::Existing) const;
template void TrainModel<float>::load_adapters(const std::string&);
template void TrainModel<double>::load_adapters(const std::string&);
template NamedArrays TrainModel<float>::param_arrays() const;
template NamedArrays TrainModel<double>::param_arrays() const;
template void TrainModel<float>::load_param_arrays(const NamedArrays&);
template void TrainModel<double>::load_param_arrays(const NamedArrays&);

}  // namespace lords::train
