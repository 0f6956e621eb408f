#!/usr/bin/env bash
# Creates the default model: t5-small's architecture and real tokenizer with RANDOM weights
# (real pretrained weights cannot be downloaded here; scripts/download-model.sh fetches them
# where a network allows). Skips the work if the model already exists.
# Usage: scripts/make-default-model.sh [OUT_DIR]   (default var/models/t5-small-random)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-var/models/t5-small-random}
bin=${BUILD_DIR:-build}/bin
if [[ -f "$out/config.json" && ( -f "$out/model.safetensors" || -f "$out/model.safetensors.index.json" ) ]]; then
  echo "default model already at $out"
  exit 0
fi
"$bin/softserve-make-checkpoint" --config tests/data/t5-small/config.json --out "$out" \
  --tokenizer tests/data/t5-small/spiece.model --seed 0
