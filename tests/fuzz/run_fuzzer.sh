#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time over a scratch copy of its seed corpus; a crash
# (or leak, or sanitizer report) fails the run and leaves the input in the build directory.
# Usage: run_fuzzer.sh FUZZER SEED_CORPUS SECONDS OUT_DIR [extra libFuzzer flags, e.g. -runs=N]
set -euo pipefail
fuzzer=$1 seeds=$2 seconds=$3 out=$4
shift 4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$seeds"/* "$work/"
"$fuzzer" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=4096 \
  -artifact_prefix="$out/$(basename "$fuzzer")-" "$@" "$work"
