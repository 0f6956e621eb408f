#!/usr/bin/env bash
# Builds the safetensors libFuzzer target with clang-14 (ASan + UBSan) and runs it for a bounded
# time over a copy of the kept seed corpus (tests/fuzz/corpus/safetensors). New inputs go to a
# scratch directory; crashes are written there and fail the run.
# Usage: tests/fuzz/run_fuzz.sh SECONDS BUILD_DIR
# Exit 77 (CTest "skipped") when clang-14 or its fuzzer runtime is not installed.
set -euo pipefail
seconds=${1:-60}
build=${2:-build}
src=$(cd "$(dirname "$0")/../.." && pwd)
clang=$(command -v clang++-14 || true)
if [[ -z "$clang" ]]; then
  echo "clang++-14 not installed: fuzzing skipped" >&2
  exit 77
fi
out="$build/fuzz"
mkdir -p "$out"
"$clang" -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$src" "$src/tests/fuzz/safetensors_fuzz.cc" "$src/core/model/safetensors.cc" \
  "$src/core/common/json.cc" "$src/core/common/status.cc" "$src/core/common/file_util.cc" \
  -o "$out/safetensors_fuzz"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$src"/tests/fuzz/corpus/safetensors/* "$work/"
"$out/safetensors_fuzz" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
  -artifact_prefix="$out/" "$work"
