#!/usr/bin/env bash
# Every benchmark behind docs/BENCHMARKS.md, on the installed assets. Results go to $OUT_DIR (default out/bench).
#   scripts/run_benchmarks.sh [ptq|solvers|speed|ppl|all]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LORDS="${LORDS:-$ROOT/build/cpu-release/lords}"
C="${LORDS_CACHE:-$HOME/.cache/lords}"
OUT_DIR="${OUT_DIR:-$ROOT/out/bench}"
SMOL="$C/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
S="$C/shakespeare"
mkdir -p "$OUT_DIR"

ptq() {  # weight error: RTN vs LoRDS (SVD init, Adam-500, ALS-20), NF 4/3/2 bits, G 128/64
  python3 "$ROOT/scripts/bench_ptq.py" "$SMOL" --lords "$LORDS" | tee "$OUT_DIR/ptq_smollm2.md"
  python3 "$ROOT/scripts/bench_ptq.py" "$C/minilm" --lords "$LORDS" | tee "$OUT_DIR/ptq_minilm.md"
}
solvers() {  # ALS vs Adam on Llama-3-8B-sized matrices with a real fp32 layer's statistics
  "$LORDS" bench-solvers --shape 4096x4096 --shape 4096x14336 --bits 3,4 \
    --like "$C/minilm" --like-layer encoder.layer.0.intermediate.dense.weight | tee "$OUT_DIR/solvers.md"
}
speed() {  # pp/tg tokens/s: fp32 vs 4-bit block-wise vs 4-bit LoRDS
  "$LORDS" quantize "$SMOL" -o "$OUT_DIR/smollm2-rtn4" --force --method rtn --bits 4 -q > /dev/null
  "$LORDS" quantize "$SMOL" -o "$OUT_DIR/smollm2-lords4" --force --method lords --bits 4 -q > /dev/null
  "$LORDS" bench "$SMOL" "$OUT_DIR/smollm2-rtn4" "$OUT_DIR/smollm2-lords4" -p 256 -n 64 -r 3 | tee "$OUT_DIR/speed.md"
}
ppl() {  # perplexity of every quantizer, calibration (Macbeth) disjoint from evaluation (Hamlet)
  "$LORDS" bench-ppl "$SMOL" --text "$S/hamlet_gut.txt" --calib "$S/macbeth_gut.txt" --bits 4,3,2 \
    --blocks 128,64 --chunks 8 --calib-tokens 8192 | tee "$OUT_DIR/ppl.md"
}

case "${1:-all}" in
  ptq) ptq ;; solvers) solvers ;; speed) speed ;; ppl) ppl ;;
  all) ptq; solvers; speed; ppl ;;
  *) echo "usage: $0 [ptq|solvers|speed|ppl|all]" >&2; exit 2 ;;
esac
