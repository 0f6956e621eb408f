#!/usr/bin/env bash
# Container entrypoint: if the model directory holds no checkpoint and
# SOFTSERVE_RANDOM_MODEL is 1 (the default), creates the default model — t5-small's
# architecture (output layer untied) and real tokenizer with RANDOM weights, loudly labelled by
# the server — then
# execs softserve-server with the given arguments.
set -euo pipefail
prefix=$(cd "$(dirname "$0")/.." && pwd)
model_dir=${SOFTSERVE_MODEL_DIR:-/models/t5-small-random}
if [[ ! -f "$model_dir/model.safetensors" && ! -f "$model_dir/model.safetensors.index.json" ]]; then
  if [[ "${SOFTSERVE_RANDOM_MODEL:-1}" == "1" ]]; then
    echo "softserve-entrypoint: no checkpoint in $model_dir; creating a RANDOM-weight t5-small stand-in" >&2
    "$prefix/bin/softserve-make-checkpoint" --config "$prefix/share/softserve/t5-small/config.json" \
      --out "$model_dir" --tokenizer "$prefix/share/softserve/t5-small/spiece.model" --untie-output-layer
  else
    echo "softserve-entrypoint: no checkpoint in $model_dir (run scripts/download-model.sh)" >&2
    exit 1
  fi
fi
exec "$prefix/bin/softserve-server" --model-dir "$model_dir" "$@"
