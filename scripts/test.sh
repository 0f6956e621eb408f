#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test (CTest + GoogleTest, the fuzzer for a
# bounded time). This is the command README.md gives and .ci/run runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --no-tests=error -j "${TEST_JOBS:-2}" "$@"
