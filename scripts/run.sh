#!/usr/bin/env bash
# Builds fp4sim (Release) and runs its main job: the self-check/demo of the
# formats. Extra arguments are passed to `fp4sim selfcheck`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
build/cli/fp4sim selfcheck "$@"
