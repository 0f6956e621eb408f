#!/usr/bin/env bash
# The one command for a GPU machine: builds the engine, its benchmark and the gpu-labelled tests
# against the machine's libtorch, runs the Hugging Face reference suites on the device, times the
# engine against Hugging Face transformers + PEFT generate() on the same device and checkpoints,
# reports each decode step beside its memory-bandwidth floor, and writes everything to one
# results file (OUT/results.md, with the raw JSON beside it).
#
# Usage: bash scripts/device-check.sh [--device cuda|cpu] [--out DIR] [--models LIST]
#                                     [--batches LIST] [--threads N] [--skip-build]
#        bash scripts/device-check.sh --prepare-carry
#   --prepare-carry  (here, before a GPU run) copies Debian's GoogleTest sources into
#                  var/device-check/googletest, which the device tool must carry:
#                  run(command="bash scripts/device-check.sh", carry=["var/device-check/googletest"])
#   --device cuda  (default) bfloat16; t5-small, t5-base, t5-large shapes; batch 1..256
#   --device cpu   the dry run: float32, a tiny shape, batch 1 and 4, the same steps end to end
#                  (the gpu tests skip there, so their CPU registrations run instead)
#
# Needs only what a GPU machine with a pip PyTorch has: Python 3 with torch (libtorch comes from
# torch.utils.cmake_prefix_path; without it, a system libtorch), cmake, a C++17 compiler, and
# for the baseline transformers + peft. No gRPC, SentencePiece, abseil or network: the service
# and tokenizer are not built. GoogleTest comes from the system, from $SOFTSERVE_GTEST_SOURCE_DIR
# or from var/device-check/googletest (copy Debian's /usr/src/googletest there and carry it).
# Under 8 minutes on one H200 with 16 cores (build about 3, benchmarks about 4).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

device=cuda out=var/device-check/results models="" batches="" threads=0 skip_build=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --device) device=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --skip-build) skip_build=1; shift ;;
    --prepare-carry)
      rm -rf var/device-check/googletest && mkdir -p var/device-check
      cp -r /usr/src/googletest var/device-check/googletest
      echo "var/device-check/googletest ready ($(du -sh var/device-check/googletest | cut -f1)); carry it to the GPU machine"
      exit 0 ;;
    *) echo "device-check: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
case "$device" in
  cuda*) dtype=bfloat16; models=${models:-t5-small,t5-base,t5-large}
         batches=${batches:-1,8,32,64,128,256}; new_tokens=32; repeats=2 ;;
  cpu) dtype=float32; models=${models:-t5-tiny}; batches=${batches:-1,4}; new_tokens=8; repeats=1 ;;
  *) echo "device-check: --device must be cuda, cuda:N or cpu" >&2; exit 2 ;;
esac
[[ $threads -gt 0 ]] || threads=$(nproc)
build=${BUILD_DIR:-build-device}
mkdir -p "$out"
log=$out/log.txt
exec > >(tee "$log") 2>&1
started=$(date +%s)
step() { echo; echo "== $* ($(( $(date +%s) - started )) s)"; }
py=python3
command -v "$py" >/dev/null || py=/usr/bin/python3

step "environment"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "host: $(uname -srm), $(nproc) cores"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/gpu: /'
  fi
  "$py" -c 'import torch; print("torch:", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' 2>/dev/null ||
    echo "torch (python): not importable"
  echo "cmake: $(cmake --version | head -1)"
  echo "compiler: $(${CXX:-c++} --version | head -1)"
} | tee "$out/environment.txt"

if [[ $skip_build -eq 0 ]]; then
  step "configure and build (engine, benchmark, gpu tests; no service, no tokenizer)"
  cmake_args=(-S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSOFTSERVE_WITH_SERVICE=OFF
              -DSOFTSERVE_WITH_TOKENIZER=OFF -DSOFTSERVE_BUILD_TESTS=ON -DSOFTSERVE_BUILD_BENCH=ON)
  command -v ninja >/dev/null && cmake_args+=(-G Ninja)
  if prefix=$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null); then
    cmake_args+=("-DCMAKE_PREFIX_PATH=$prefix")
  fi
  gtest_src=${SOFTSERVE_GTEST_SOURCE_DIR:-}
  if [[ -z $gtest_src && -d var/device-check/googletest ]] && ! ls /usr/lib/*/cmake/GTest >/dev/null 2>&1; then
    gtest_src=$repo/var/device-check/googletest
  fi
  [[ -n $gtest_src ]] && cmake_args+=("-DSOFTSERVE_GTEST_SOURCE_DIR=$gtest_src")
  cmake "${cmake_args[@]}"
  cmake --build "$build" -j "$(nproc)" --target softserve_engine_bench engine_reference_test model_test
fi

step "reference suites on $device"
tests_status=0
if [[ $device == cpu ]]; then
  # No CUDA here: the gpu registrations must skip with their reason, and the same tests run on
  # the CPU in their place.
  (cd "$build" && ctest -L gpu --output-on-failure) | tee "$out/tests-gpu-label.txt" || tests_status=1
  (cd "$build" && ctest -R '^References/EngineReferenceTest|^T5RunnerCreateTest|BFloat16' --output-on-failure -j "$(nproc)") |
    tee "$out/tests.txt" || tests_status=1
else
  (cd "$build" && ctest -L gpu --output-on-failure -j 8) | tee "$out/tests.txt" || tests_status=1
fi

bench_status=0
IFS=, read -r -a model_list <<< "$models"
for m in "${model_list[@]}"; do
  case "$m" in
    t5-tiny) config=tests/data/t5-reference/t5-tiny-v1_0/config.json; prompt_rows=4; input_tokens=12 ;;
    *) config=bench/configs/$m.json; prompt_rows=20; input_tokens=64 ;;
  esac
  cache=var/bench-models/$m-random
  step "engine benchmark: $m, $dtype, batches $batches"
  "$build/bin/softserve-engine-bench" --config "$config" --cache-dir "$cache" --device "$device" \
    --dtype "$dtype" --batches "$batches" --threads "$threads" --repeats "$repeats" \
    --prompt-rows "$prompt_rows" --input-tokens "$input_tokens" --new-tokens "$new_tokens" \
    --json "$out/engine-$m.json" || bench_status=1
  step "Hugging Face transformers + PEFT baseline: $m"
  set +e
  "$py" bench/hf_generate_baseline.py --model-dir "$cache" --device "$device" --dtype "$dtype" \
    --batches "$batches" --repeats "$repeats" --prompt-rows "$prompt_rows" \
    --input-tokens "$input_tokens" --new-tokens "$new_tokens" --threads "$threads" \
    --json "$out/hf-$m.json"
  hf=$?
  set -e
  if [[ $hf -eq 3 && $device == cpu ]]; then
    echo "baseline not run here (the dry run's machine lacks transformers or peft)"
    echo '{"skipped": "transformers or peft not importable on this machine"}' > "$out/hf-$m.json"
  elif [[ $hf -ne 0 ]]; then
    bench_status=1
  fi
done

step "report"
"$py" scripts/device_check_report.py --out "$out" --models "$models" --device "$device" --dtype "$dtype" \
  --tests "$out/tests.txt" --seconds $(( $(date +%s) - started ))
echo "results: $out/results.md"
if [[ $tests_status -ne 0 || $bench_status -ne 0 ]]; then
  echo "device-check: FAILED (tests $tests_status, benchmarks $bench_status); see $log" >&2
  exit 1
fi
echo "device-check: passed in $(( $(date +%s) - started )) s"
