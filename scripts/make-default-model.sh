#!/usr/bin/env bash
# Creates the default model: t5-small's architecture and real tokenizer with RANDOM weights
# (real pretrained weights cannot be downloaded here; scripts/download-model.sh fetches them
# where a network allows), its output layer untied from the embedding (as in T5 v1.1) so that
# generation prints varied (meaningless) text instead of repeating the start token. Skips the
# work if a model already exists there.
# Usage: scripts/make-default-model.sh [OUT_DIR]   (default var/models/t5-small-random)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-var/models/t5-small-random}
bin=${BUILD_DIR:-build}/bin
if [[ -f "$out/config.json" && ( -f "$out/model.safetensors" || -f "$out/model.safetensors.index.json" ) ]]; then
  # An earlier stand-in (random and tied: it only ever repeats the start token) is replaced.
  if grep -q '"softserve_random_weights":true' "$out/config.json" && grep -q '"tie_word_embeddings":true' "$out/config.json"; then
    echo "replacing the earlier random stand-in at $out (tied output layer) with an untied one"
    rm -f "$out/model.safetensors" "$out/model.safetensors.index.json" "$out"/model-*-of-*.safetensors
  else
    echo "default model already at $out"
    exit 0
  fi
fi
"$bin/softserve-make-checkpoint" --config tests/data/t5-small/config.json --out "$out" \
  --tokenizer tests/data/t5-small/spiece.model --seed 0 --untie-output-layer
