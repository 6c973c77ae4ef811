#!/usr/bin/env bash
# Builds fp4sim and runs the whole default test suite twice: a Release build
# (with CUDA kernels compiled when nvcc is present) and an AddressSanitizer +
# UndefinedBehaviorSanitizer build. Long tests: ctest --test-dir build -L long.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs="$(nproc)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build -LE long --output-on-failure -j"$jobs"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFP4SIM_SANITIZE=ON \
      -DFP4SIM_CUDA=OFF >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -LE "long|perf" --output-on-failure -j"$jobs"
