#!/usr/bin/env bash
# Configures and builds softserve (Release, Ninja) into BUILD_DIR (default: build).
# The one build recipe shared by README, CI (.ci/run via scripts/test.sh) and the Dockerfile.
# Extra arguments go to cmake, e.g. -DSOFTSERVE_WITH_SERVICE=OFF.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build" -j "$jobs"
