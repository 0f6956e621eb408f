#!/usr/bin/env bash
# The container's build stage (also run by scripts/rehearse-fresh-machine.sh): the same
# install and build scripts as CI, then an install tree under PREFIX (default /opt/softserve).
# Run from the repository root.
set -euo pipefail
prefix=${PREFIX:-/opt/softserve}
bash scripts/install-deps.sh
BUILD_DIR=${BUILD_DIR:-/tmp/softserve-build} bash scripts/build.sh \
  -DSOFTSERVE_BUILD_TESTS=OFF -DSOFTSERVE_BUILD_BENCH=OFF -DCMAKE_INSTALL_PREFIX="$prefix" "$@"
cmake --install "${BUILD_DIR:-/tmp/softserve-build}"
# What the entrypoint needs to create the default (random-weight) model.
install -d "$prefix/share/softserve/t5-small"
install -m 0644 tests/data/t5-small/config.json tests/data/t5-small/spiece.model "$prefix/share/softserve/t5-small/"
install -m 0755 scripts/docker/entrypoint.sh "$prefix/bin/softserve-entrypoint"
