#!/usr/bin/env bash
# Fresh Debian 12 machine to a running softserve in one command: installs dependencies, builds,
# creates the default model (t5-small's architecture and real tokenizer with RANDOM weights,
# unless scripts/download-model.sh fetched real ones) and starts the server on it, ready for the
# CLI. Extra arguments go to softserve-server (see `build/bin/softserve-server --help`).
#
# Without --tenants-file a development key is used (SOFTSERVE_DEV_KEY, default
# "softserve-dev-key") and the server listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
bash scripts/make-default-model.sh
model=var/models/t5-small-random
[[ -f var/models/t5-small/model.safetensors || -f var/models/t5-small/model.safetensors.index.json ]] && model=var/models/t5-small
args=(--model-dir "$model" --store-dir var/prompts)
if [[ " $* " != *" --tenants-file "* && " $* " != *" --config "* ]]; then
  key=${SOFTSERVE_DEV_KEY:-softserve-dev-key}
  args+=(--dev-api-key "$key" --listen 127.0.0.1:50051 --metrics-listen 127.0.0.1:9090 --http-listen 127.0.0.1:8080)
  cat <<MSG
softserve is starting on 127.0.0.1:50051 (OpenAI-compatible HTTP on 127.0.0.1:8080, metrics on
127.0.0.1:9090) with the development key. In another terminal:
  export SOFTSERVE_API_KEY=$key
  build/bin/softserve health
  build/bin/softserve generate --text "translate English to German: The house is wonderful."
  curl -s 127.0.0.1:8080/v1/completions -H "Authorization: Bearer \$SOFTSERVE_API_KEY" \\
    -d '{"model": "@base", "prompt": "translate English to German: The house is wonderful.", "temperature": 0}'
MSG
fi
exec "${BUILD_DIR:-build}/bin/softserve-server" "${args[@]}" "$@"
