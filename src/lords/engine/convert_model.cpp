#include "lords/engine/convert_model.h"

#include "lords/core/atomic_output.h"
#include "lords/engine/checkpoint.h"
#include "lords/engine/write_support.h"
#include "lords/io/model_source.h"
#include "lords/io/safetensors.h"
#include "lords/model/weight_table.h"

namespace lords::engine {

void convert_model(const std::string& source, const std::string& output, bool overwrite) {
  const io::ModelSource src = io::open_model(source);
  const model::ModelConfig mc = model::parse_model_config(src.config, src.config_path);
  const std::vector<model::ResolvedWeight> all = model::resolve_weights(src, mc);
  AtomicDir out(output, overwrite ? AtomicDir::Existing::Replace : AtomicDir::Existing::Refuse);
  io::SafetensorsWriter writer(out.file(kWeightsFile));
  declare_plain_tensors(src, all, &writer);
  writer.set_metadata({{"format", "pt"}});
  writer.begin();
  write_plain_tensors(src, all, &writer);
  writer.commit();
  write_model_files(src, std::nullopt, out.tmp_path());
  out.commit();
}

}  // namespace lords::engine
