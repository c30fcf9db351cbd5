#!/usr/bin/env bash
# Every benchmark behind docs/BENCHMARKS.md, on the installed assets. Results go to $OUT_DIR (default out/bench).
#   scripts/run_benchmarks.sh [ptq|solvers|speed|ppl|finetune|all]
# finetune is docs/BENCHMARKS.md 8.2 (GPU: DEVICE=cuda, LORDS built with CUDA); STEPS, SEEDS, BITS, LRS and
# EVAL_BATCHES shrink it for a smoke run (e.g. DEVICE=cpu STEPS=1 SEEDS=0 BITS=4 EVAL_BATCHES=1).
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

finetune() {  # LoRDS-PEFT vs QLoRA (matched trainable count) vs QAT on FanOutQA at 4/3/2 bits, seeds 0-2
  local F="$OUT_DIR/finetune" dev="${DEVICE:-cuda}" steps="${STEPS:-100}" lr="${LRS:-1e-3}"
  local data="$C/fanoutqa/fanoutqa_dev.jsonl"
  mkdir -p "$F"
  run() {  # method bits lr seed checkpoint [extra args]
    local m=$1 b=$2 l=$3 s=$4 ck=$5; shift 5
    "$LORDS" finetune "$ck" --mode "$m" -o "$F/${m}_b${b}_lr${l}_s${s}.out" --force --data "$data" --batch 8 \
      --seq-len 128 --held-out-fraction 0.1 --steps "$steps" --lr "$l" --seed "$s" --device "$dev" \
      --recompute off --eval-batches "${EVAL_BATCHES:-0}" --json -q "$@" > "$F/${m}_b${b}_lr${l}_s${s}.json"
  }
  for b in ${BITS:-4 3 2}; do
    "$LORDS" quantize "$SMOL" -o "$F/lords$b" --force --method lords --bits "$b" --block 128 --solver als --device "$dev" -q
    "$LORDS" quantize "$SMOL" -o "$F/nf$b" --force --method rtn --bits "$b" --block 128 --device "$dev" -q
    for s in ${SEEDS:-0 1 2}; do
      for l in $lr; do
        run peft "$b" "$l" "$s" "$F/lords$b"
        run qlora "$b" "$l" "$s" "$F/nf$b" --match-params "$F/lords$b"
      done
      [ "$b" = 4 ] || run qat "$b" 2e-5 "$s" "$F/lords$b" --qat-base "$SMOL"
    done
  done
  python3 "$ROOT/scripts/summarize_finetune.py" "$F"/*.json | tee "$OUT_DIR/finetune.md"
}

case "${1:-all}" in
  ptq) ptq ;; solvers) solvers ;; speed) speed ;; ppl) ppl ;; finetune) finetune ;;
  all) ptq; solvers; speed; ppl ;;
  *) echo "usage: $0 [ptq|solvers|speed|ppl|finetune|all]" >&2; exit 2 ;;
esac
