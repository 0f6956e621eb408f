#!/usr/bin/env bash
# Runs softserve-store-bench (propagation between replicas, cache-miss reads, cold start) against
# a throwaway PostgreSQL from Debian's postgresql package: a fresh cluster in a temporary
# directory on 127.0.0.1 at a free port, default durability settings, as the postgres user when
# run as root (PostgreSQL refuses root). Extra arguments go to the benchmark.
# Usage: bash scripts/store-bench.sh [--uploads 200] [--registry 10000]   (after scripts/build.sh)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/postgres.sh
source "$repo/scripts/lib/postgres.sh"
dir=$(mktemp -d /tmp/softserve-store-bench-XXXXXX)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pg_start "$dir" "$port"
trap 'pg_stop "$dir"; rm -rf "$dir"' EXIT
echo "PostgreSQL $("$(pg_bin)/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($(nproc) cores)"
"$repo/build/bin/softserve-store-bench" --store-url "postgresql://softserve@127.0.0.1:$port/postgres" "$@"
