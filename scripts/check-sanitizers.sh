#!/usr/bin/env bash
# The reliability suite CI runs after the README's test command (.ci/run). Two clang-14 builds:
#
#  build-asan  AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer on), every target
#              built with -Wthread-safety -Werror=thread-safety and libFuzzer coverage; runs the
#              whole unit and end-to-end suites, then each fuzz target for SOFTSERVE_FUZZ_SECONDS.
#              Tests that load the SentencePiece shim are the exception: the sanitizer runtime
#              refuses dlopen(RTLD_DEEPBIND) (google/sanitizers#611), which the shim's isolation
#              needs, so the tokenizer tests run under Valgrind's memcheck (the regular build)
#              instead.
#  build-tsan  ThreadSanitizer: the engine's concurrency tests (fake and real T5 runners), the
#              prompt registry's readers-during-writes test and the server's shared budgets and
#              upload workers. Not the end-to-end server: Debian's gRPC and abseil are not built
#              with TSan, abseil's futex-based Mutex is invisible to it, so every hand-off between
#              gRPC's threads (callback tags, reactor reference counts inlined from grpcpp
#              headers) reports as a race. That needs a TSan-built gRPC; see docs/RELIABILITY.md.
#
# Usage: scripts/check-sanitizers.sh [asan|tsan|all|fuzz]   (default all; JOBS=N for the builds;
#        fuzz: only the fuzz targets, as scripts/check-libtorch2.sh runs them)
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
jobs=${JOBS:-$(nproc)}
# clang-14 on Debian 12; Debian 13 (scripts/check-libtorch2.sh) has only its own clang.
cc=clang-14 cxx=clang++-14
command -v "$cxx" > /dev/null || cc=clang cxx=clang++
common=(-G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_C_COMPILER=$cc -DCMAKE_CXX_COMPILER=$cxx
        "-DCMAKE_CXX_FLAGS=-O1 -g1" "-DCMAKE_C_FLAGS=-O1 -g1" -DSOFTSERVE_BUILD_BENCH=OFF)
uses_tokenizer='Tokenizer|TokenizesInsideTheServerProcess|StreamedTextDeltas|DefaultModelTest|E2eHttpTest|E2eHttpDrainTest|E2eGenerationControls'

if [[ "$which" == asan || "$which" == all ]]; then
  echo "== AddressSanitizer + UndefinedBehaviorSanitizer, -Wthread-safety, fuzzers"
  cmake -S . -B build-asan "${common[@]}" -DSOFTSERVE_SANITIZE=address,undefined -DSOFTSERVE_BUILD_FUZZERS=ON \
    -DSOFTSERVE_FUZZ_SECONDS="${SOFTSERVE_FUZZ_SECONDS:-20}"
  cmake --build build-asan -j "$jobs"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  (cd build-asan && ctest --output-on-failure --no-tests=error -j "$jobs" -E "$uses_tokenizer")
  unset ASAN_OPTIONS UBSAN_OPTIONS
  echo "== the tokenizer tests under Valgrind memcheck (regular build)"
  bin=${BUILD_DIR:-build}/bin
  vg=(valgrind --quiet --error-exitcode=1 --leak-check=no --suppressions=tests/valgrind.supp)
  "${vg[@]}" "$bin/tokenizer_test"
  "${vg[@]}" "$bin/tokenizer_in_grpc_process_test"
fi

if [[ "$which" == fuzz ]]; then
  echo "== the fuzz targets alone (ASan+UBSan), SOFTSERVE_FUZZ_SECONDS each"
  cmake -S . -B build-asan "${common[@]}" -DSOFTSERVE_SANITIZE=address,undefined -DSOFTSERVE_BUILD_FUZZERS=ON \
    -DSOFTSERVE_FUZZ_SECONDS="${SOFTSERVE_FUZZ_SECONDS:-20}"
  cmake --build build-asan -j "$jobs" --target fuzz_safetensors fuzz_peft fuzz_residual fuzz_config fuzz_upload
  (cd build-asan && ctest --output-on-failure --no-tests=error -j "$jobs" -L fuzz)
fi

if [[ "$which" == tsan || "$which" == all ]]; then
  echo "== ThreadSanitizer: the engine's and the server's concurrency tests, the CPU kernels' worker pool"
  cmake -S . -B build-tsan "${common[@]}" -DSOFTSERVE_SANITIZE=thread -DSOFTSERVE_WITH_TOKENIZER=OFF
  cmake --build build-tsan -j "$jobs" --target engine_test engine_reference_test prompt_registry_test server_test model_test
  # Suppressions only for the uninstrumented libraries: libtorch's thread pools and gRPC/abseil
  # (our absl::Mutex wrapper, server/sync.h, tells TSan about every lock we take). Listed by name
  # from ldd: called_from_lib takes exact sonames, and TSan aborts when the suppressed libraries'
  # mappings overflow its table, so never "every library".
  supp=build-tsan/tsan.supp
  {
    echo "race:libgomp.so"
    echo "race:libopenblas.so"  # its threads hand work over with spin-waits TSan cannot see
    echo "called_from_lib:libtorch_cpu.so"
    ldd build-tsan/bin/server_test | awk '{print $1}' |
      grep -E '^lib(absl|grpc|gpr|upb|protobuf|address_sorting|re2|cares|ssl|crypto|z\.)' |
      sed 's/^/called_from_lib:/'
  } > "$supp"
  export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1  # uninstrumented thread pools: keep them out
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/$supp"
  (cd build-tsan && ctest --output-on-failure --no-tests=error -j "$jobs" \
    -R '^(EngineTest|EngineBackgroundTest|EngineIsolationTest|SchedulerTest|DecodingTest|Faults/|References/EngineReferenceTest|PromptRegistryTest|ServerConcurrencyTest|PgChangeFollowerTest|PgPromptStoreTest|SpinPoolTest|ParallelForTest|PackedMatmulTest)')
fi
