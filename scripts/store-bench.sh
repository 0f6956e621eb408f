#!/usr/bin/env bash
# Runs softserve-store-bench (propagation between replicas, cache-miss reads, cold start) against
# a throwaway PostgreSQL from Debian's postgresql package: a fresh cluster in a temporary
# directory on 127.0.0.1 at a free port, default durability settings, as the postgres user when
# run as root (PostgreSQL refuses root). Extra arguments go to the benchmark.
# Usage: bash scripts/store-bench.sh [--uploads 200] [--registry 10000]   (after scripts/build.sh)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
dir=$(mktemp -d /tmp/softserve-store-bench-XXXXXX)
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg "$bin/initdb" -D "$dir/data" -A trust -U softserve -E UTF8 --locale=C >/dev/null
as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "-p $port -k $dir -c listen_addresses=127.0.0.1" -w start >/dev/null
trap 'as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null; rm -rf "$dir"' EXIT
echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($(nproc) cores)"
"$repo/build/bin/softserve-store-bench" --store-url "postgresql://softserve@127.0.0.1:$port/postgres" "$@"
