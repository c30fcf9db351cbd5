#!/usr/bin/env bash
# The main job: install, build, fetch the default model (SmolLM2-135M-Instruct) and quantize it with
# LoRDS (NF4, block-128 parameter budget, exact ALS refinement), printing the per-layer error table.
# Extra arguments are passed to `lords quantize` (e.g. --bits 3, --method rtn).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LORDS_CACHE="${LORDS_CACHE:-$HOME/.cache/lords}"
"$ROOT/scripts/setup.sh" all
mkdir -p "$ROOT/out"
exec "$ROOT/build/cpu-release/lords" quantize "$LORDS_CACHE/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" \
  -o "$ROOT/out/smollm2-lords-nf4" --force --method lords --bits 4 --codebook nf --block 128 --solver als "$@"
