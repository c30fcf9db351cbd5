#!/usr/bin/env bash
# The whole test suite: installs the Debian packages, builds (Release, CUDA when nvcc is present),
# runs every ctest test, then the AddressSanitizer + UBSan build of the same suite.
# Mechanics are tested on small seeded models the tests write; the default model from PyTorch fixtures.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" deps
"$ROOT/scripts/setup.sh" assets   # the golden tests compare the real default model with PyTorch
JOBS="$(nproc)"
# -DLORDS_CUDA=ON: CUDA whenever nvcc exists, whatever an earlier configure left in the cache.
cmake -S "$ROOT" -B "$ROOT/build/cpu-release" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLORDS_WERROR=ON -DLORDS_CUDA=ON >/dev/null
ninja -C "$ROOT/build/cpu-release" -j"$JOBS"
(cd "$ROOT/build/cpu-release" && ctest --output-on-failure -j"$JOBS" --timeout 600)
if [ "${LORDS_SKIP_ASAN:-0}" != "1" ]; then
  # -O1 and no benchmark target: the sanitizer build exists to run the tests, and compiles faster so.
  cmake -S "$ROOT" -B "$ROOT/build/asan" -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1 -g1" \
    -DLORDS_CUDA=OFF -DLORDS_SANITIZE=ON -DLORDS_BENCH=OFF >/dev/null
  ninja -C "$ROOT/build/asan" -j"$JOBS"
  (cd "$ROOT/build/asan" && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$JOBS" --timeout 900)
fi
