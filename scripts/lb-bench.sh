#!/usr/bin/env bash
# Throughput through nginx with one and with two replicas (scripts/run-replicas.sh), driven by
# softserve-grpc-load (the real client library): same load, one run each, back to back.
# Usage: bash scripts/lb-bench.sh [softserve-grpc-load flags, e.g. --callers 8 --seconds 20]
# On a machine with fewer cores than replicas x threads, two replicas cannot be faster: they
# share the cores. The point of the figure is what the balancer and a second replica cost.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
echo "| replicas | callers | requests/s | tokens/s | p50 | p99 | failed |"
for n in 1 2; do
  bash scripts/run-replicas.sh --replicas "$n" --dev-api-key lb-bench-key > "var/lb-bench-$n.log" 2>&1 &
  runner=$!
  for _ in $(seq 1 120); do
    build/bin/softserve --api-key lb-bench-key --timeout 2 health >/dev/null 2>&1 && break
    sleep 0.5
  done
  printf "| %s " "$n"
  build/bin/softserve-grpc-load --api-key lb-bench-key "$@" || true
  kill -TERM "$runner"
  wait "$runner" || true
done
