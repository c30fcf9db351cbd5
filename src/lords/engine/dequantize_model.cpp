#include "lords/engine/dequantize_model.h"

#include <filesystem>

#include "lords/core/atomic_output.h"
#include "lords/core/error.h"
#include "lords/engine/checkpoint.h"
#include "lords/engine/write_support.h"
#include "lords/io/safetensors.h"

namespace lords::engine {
void dequantize_model(const DequantizeRequest& req) {
  LORDS_CHECK(req.dtype == DType::F32 || req.dtype == DType::F16 || req.dtype == DType::BF16, ErrorKind::Usage,
              "--dtype must be f32, f16 or bf16");
  const Checkpoint ck(req.checkpoint);
  AtomicDir out(req.output, req.overwrite ? AtomicDir::Existing::Replace : AtomicDir::Existing::Refuse);
  io::SafetensorsWriter writer(out.file(kWeightsFile));
  const std::vector<std::string> plain = ck.plain_names();
  for (const std::string& name : ck.quantized_names()) {
    const auto& shape = ck.layer_table().at(name).at("shape");
    writer.declare(name, req.dtype, {shape.at(0).get<int64_t>(), shape.at(1).get<int64_t>()});
  }
  for (const std::string& name : plain) {
    const io::TensorInfo& info = ck.index().at(name);
    DType t = DType::F32;
    LORDS_ASSERT(dtype_from_name(info.dtype, &t));
    writer.declare(name, t, info.shape);
  }
  writer.set_metadata({{"format", "pt"}, {"lords.dequantized_from", std::filesystem::path(req.checkpoint).filename()}});
  writer.begin();
  for (const std::string& name : ck.quantized_names()) {
    const QuantizedLinear q = ck.load_linear(name);
    std::vector<float> w(static_cast<size_t>(q.N * q.K));
    dequantize_linear(q, ck.codebook(), w.data());
    const std::vector<uint8_t> bytes = encode_floats(w, req.dtype);
    writer.write(name, bytes.data(), bytes.size());
  }
  for (const std::string& name : plain) writer.write(name, ck.index().raw(name), ck.index().at(name).nbytes);
  writer.commit();

  nlohmann::json cfg = ck.config();
  cfg.erase("quantization_config");
  cfg["torch_dtype"] = req.dtype == DType::F32 ? "float32" : req.dtype == DType::F16 ? "float16" : "bfloat16";
  write_json_file(out.file("config.json"), cfg);
  for (const auto& entry : std::filesystem::directory_iterator(ck.dir())) {
    const std::string f = entry.path().filename().string();
    if (f != "config.json" && f != kWeightsFile && entry.is_regular_file())
      copy_file_atomic(entry.path().string(), out.file(f));
  }
  out.commit();
}

}  // namespace lords::engine
