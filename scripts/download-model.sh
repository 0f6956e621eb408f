#!/usr/bin/env bash
# Downloads a real T5 checkpoint from the Hugging Face hub into the model directory, in the
# layout softserve loads (config.json, model.safetensors or sharded, spiece.model).
#
# Usage: scripts/download-model.sh [REPO [OUT_DIR]]
#   REPO     default google/t5-base-lm-adapt (the LM-adapted T5 the prompt-tuning paper uses);
#            also t5-small, t5-base, google/flan-t5-base, ...
#   OUT_DIR  default var/models/<last part of REPO>; scripts/run.sh serves var/models/t5-small
#            when present.
# Where the hub cannot be reached (as on these build machines), it says so and exits 3; the
# default start then keeps using the random-weight stand-in.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=${1:-google/t5-base-lm-adapt}
out=${2:-var/models/${repo##*/}}
base="https://huggingface.co/${repo}/resolve/main"
auth=()
[[ -n "${HF_TOKEN:-}" ]] && auth=(-H "Authorization: Bearer ${HF_TOKEN}")
fetch() {  # fetch FILE [optional]
  if curl -fsSL --connect-timeout 10 "${auth[@]}" -o "$out/$1.part" "$base/$1"; then
    mv "$out/$1.part" "$out/$1"
    return 0
  fi
  rm -f "$out/$1.part"
  return 1
}
command -v curl >/dev/null || { echo "download-model: curl is not installed (apt-get install curl)" >&2; exit 2; }
mkdir -p "$out"
if ! curl -fsSI --connect-timeout 10 "${auth[@]}" "$base/config.json" >/dev/null 2>&1; then
  cat >&2 <<MSG
download-model: cannot reach huggingface.co for ${repo} (no network here, or the repository
needs HF_TOKEN). Nothing was downloaded. softserve keeps serving the RANDOM-weight default
(scripts/make-default-model.sh); copy a checkpoint directory (config.json + model.safetensors
[.index.json] + spiece.model) into ${out} by other means to serve real weights.
MSG
  exit 3
fi
fetch config.json
fetch spiece.model || echo "download-model: ${repo} has no spiece.model; text inputs will need --tokenizer" >&2
if fetch model.safetensors.index.json; then
  for shard in $(python3 -c "import json,sys; print(' '.join(sorted(set(json.load(open(sys.argv[1]))['weight_map'].values()))))" "$out/model.safetensors.index.json"); do
    fetch "$shard"
  done
elif ! fetch model.safetensors; then
  echo "download-model: ${repo} publishes no safetensors weights (only pytorch_model.bin?); convert it with" >&2
  echo "  transformers' save_pretrained(safe_serialization=True)" >&2
  exit 4
fi
echo "download-model: ${repo} is in ${out}"
