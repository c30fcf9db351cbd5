// Describes a checkpoint: settings, codebook, per-layer storage and the bits per weight it really costs.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "lords/engine/checkpoint.h"

namespace lords::engine {

nlohmann::json describe_checkpoint(const Checkpoint& ck);
std::string describe_text(const nlohmann::json& description);

}  // namespace lords::engine
