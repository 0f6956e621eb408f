#!/usr/bin/env bash
# Runs the multi-replica setup on this machine, in the foreground, until Ctrl-C: a PostgreSQL
# cluster in var/replicas/pg (kept between runs: prompts survive), N softserve replicas on that
# store (--store-url), and nginx from deploy/nginx/nginx.conf in front of them. Clients use
# 127.0.0.1:50051 (nginx); replica i listens on 127.0.0.1:5006<i>, metrics on 127.0.0.1:909<i>.
#
# Usage: bash scripts/run-replicas.sh [--replicas N] [--dev-api-key KEY] [server flags...]
#   after bash scripts/build.sh (and the default model: scripts/make-default-model.sh).
# Needs Debian's postgresql and nginx (scripts/install-deps.sh). As root, PostgreSQL runs as the
# postgres user.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
replicas=2 key=dev-key extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --replicas) replicas=$2; shift 2 ;;
    --dev-api-key) key=$2; shift 2 ;;
    *) extra+=("$1"); shift ;;
  esac
done
[[ $replicas -ge 1 && $replicas -le 9 ]] || { echo "run-replicas: --replicas must be 1..9" >&2; exit 2; }
# shellcheck source=scripts/lib/postgres.sh
source "$repo/scripts/lib/postgres.sh"
work=$repo/var/replicas
mkdir -p "$work"
pg_start "$work/pg" 55432
url="postgresql://softserve@127.0.0.1:55432/postgres"
pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  pg_stop "$work/pg" || true
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM
upstreams=""
for i in $(seq 1 "$replicas"); do
  build/bin/softserve-server --store-url "$url" --listen "127.0.0.1:5006$i" --metrics-listen "127.0.0.1:909$i" \
    --store-dir "$work/spool-$i" --dev-api-key "$key" "${extra[@]}" > "$work/replica-$i.log" 2>&1 &
  pids+=($!)
  upstreams+="    server 127.0.0.1:5006$i max_fails=0;\n"
done
# deploy/nginx/nginx.conf with this machine's addresses.
mkdir -p "$work/nginx" && chmod 0777 "$work/nginx"
{
  echo "pid $work/nginx/nginx.pid;"
  echo "error_log $work/nginx/error.log;"
  sed -e "/server softserve-[ab]:50051/d" -e "s|^  upstream softserve {|  upstream softserve {\n$upstreams|" \
      -e "s|listen 50051 http2;|listen 127.0.0.1:50051 http2;|" \
      -e "s|^http {|http {\n  access_log off;\n  client_body_temp_path $work/nginx/body;\n  proxy_temp_path $work/nginx/proxy;|" \
      deploy/nginx/nginx.conf
} > "$work/nginx/nginx.conf"
/usr/sbin/nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g "daemon off;" &
pids+=($!)
echo "PostgreSQL 127.0.0.1:55432, $replicas replicas (logs: $work/replica-*.log), nginx 127.0.0.1:50051"
echo "e.g. build/bin/softserve --api-key $key generate --text \"...\"   (the CLI defaults to 127.0.0.1:50051); Ctrl-C stops everything"
wait -n "${pids[@]}"
echo "run-replicas: a process exited; stopping the rest (see $work/*.log)" >&2
