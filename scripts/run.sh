#!/usr/bin/env bash
# Fresh machine to a running job in one command: installs dependencies, builds, creates the
# default model and runs the offline generator on it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
bash scripts/make-default-model.sh
exec "${BUILD_DIR:-build}/bin/softserve-generate" --model var/models/t5-small-random \
  --text "translate English to German: The house is wonderful." --max-new-tokens 16 "$@"
