#include "common/test_quantize.h"

#include "lords/engine/quantize_model.h"

namespace lords::test {

engine::QuantConfig test_quant_config(engine::Method method, int bits, int64_t block) {
  engine::QuantConfig c;
  c.method = method;
  c.bits = bits;
  c.block = block;
  c.steps = 3;
  c.threads = 2;
  return c;
}

void quantize_quietly(const std::string& src, const std::string& out, const engine::QuantConfig& config) {
  engine::QuantizeRequest req;
  req.source = src;
  req.output = out;
  req.progress = false;
  req.config = config;
  engine::quantize_model(req);
}

}  // namespace lords::test
