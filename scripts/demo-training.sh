#!/usr/bin/env bash
# Prompt training end to end on the default model: starts a server (a free port, a temporary
# prompt store, a development key), runs scripts/demo-training.py against it (measure, train on
# the server, register, serve, measure again) and stops the server. After the README's first
# command has built everything. The default model's weights are random: see the .py file.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${MODEL:-var/models/t5-small-random}
[[ -f var/models/t5-small/model.safetensors ]] && model=${MODEL:-var/models/t5-small}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"${BUILD_DIR:-build}/bin/softserve-server" --model-dir "$model" --store-dir "$work/store" --dev-api-key demo-key \
  --listen 127.0.0.1:0 --port-file "$work/port" --metrics-listen 127.0.0.1:0 > "$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 600); do [[ -s "$work/port" ]] && break; sleep 0.1; done
[[ -s "$work/port" ]] || { cat "$work/server.log"; echo "the server did not start" >&2; exit 1; }
PYTHONPATH=client/python /usr/bin/python3 scripts/demo-training.py "127.0.0.1:$(cat "$work/port")" demo-key
