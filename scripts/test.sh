#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test: the CTest suites of the regular build
# (unit, end-to-end against the real server, deploy checks), then the reliability suite
# (scripts/check-sanitizers.sh: ASan+UBSan with the fuzz targets, TSan, Valgrind).
# This is the command README.md gives and .ci/run runs. Extra arguments go to the first ctest;
# SOFTSERVE_SANITIZERS=0 skips the reliability suite (a quicker local loop).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
(cd "${BUILD_DIR:-build}" && ctest --output-on-failure --no-tests=error -j "${TEST_JOBS:-2}" "$@")
if [[ "${SOFTSERVE_SANITIZERS:-1}" != 0 ]]; then
  bash scripts/check-sanitizers.sh all
fi
