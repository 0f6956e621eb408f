#!/usr/bin/env bash
# Soak: a real softserve-server on 127.0.0.1 and softserve-soak's mixed traffic from five tenants
# (floods, bad inputs, cancellations and deadlines, uploads and deletes) for a bounded time, the
# server's RSS sampled every 30 s. Fails when any call gets a status outside its expected set,
# the RSS grows, or the server dies. docs/RELIABILITY.md records a run.
#
# Usage: scripts/soak.sh [MINUTES]   (default 30; BUILD_DIR, SOAK_MODEL and SOAK_ARGS override)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
bin=${BUILD_DIR:-build}/bin
model=${SOAK_MODEL:-tests/data/t5-reference/t5-tiny-v1_0}
work=$(mktemp -d /tmp/softserve_soak.XXXXXX)
pid=
cleanup() {
  [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

{
  echo '{"tenants": ['
  sep=
  for t in flood quiet bad cancel uploader; do
    digest=$(printf %s "soak-$t-key" | sha256sum | cut -d' ' -f1)
    printf '%s{"name": "%s", "api_key_sha256": "%s", "max_prompts": 20}\n' "$sep" "$t" "$digest"
    sep=,
  done
  echo ']}'
} > "$work/tenants.json"

"$bin/softserve-server" --model-dir "$model" --store-dir "$work/store" --tenants-file "$work/tenants.json" \
  --listen 127.0.0.1:0 --metrics-listen "" > "$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 600); do
  grep -q "softserve ready" "$work/server.log" && break
  kill -0 "$pid" || { cat "$work/server.log"; exit 1; }
  sleep 0.1
done
port=$(sed -n 's/.*gRPC on port \([0-9]*\).*/\1/p' "$work/server.log")
read -r vocab dim < <(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(c["vocab_size"], c["d_model"])' "$model/config.json")
echo "soak: server pid $pid on 127.0.0.1:$port, model $model, $minutes min"

rc=0
# shellcheck disable=SC2086
"$bin/softserve-soak" --target "127.0.0.1:$port" --server-pid "$pid" --minutes "$minutes" \
  --vocab "$vocab" --dim "$dim" ${SOAK_ARGS:-} || rc=$?
if ! kill -0 "$pid" 2>/dev/null; then
  echo "soak: the server died"; tail -50 "$work/server.log"; exit 1
fi
if grep -E "\[(error|critical)\]" "$work/server.log" | head -5 | grep -q .; then
  echo "soak: the server logged errors:"; grep -E "\[(error|critical)\]" "$work/server.log" | head -20; rc=1
fi
exit "$rc"
