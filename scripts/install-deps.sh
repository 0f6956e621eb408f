#!/usr/bin/env bash
# Installs every Debian package that softserve's build, tests and benchmarks need: Debian 12
# (bookworm, libtorch 1.13) and Debian 13 (trixie, libtorch 2.6; scripts/check-libtorch2.sh).
# Idempotent: packages already present are skipped; safe to rerun. Waits for the apt/dpkg lock
# (another apt run, unattended-upgrades) instead of failing.
#
# Usage: scripts/install-deps.sh [--with-rehearsal]
#   --with-rehearsal  also install debootstrap (scripts/rehearse-fresh-machine.sh needs it)
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git ca-certificates
  # model math; OpenBLAS replaces the reference BLAS that libtorch would otherwise use
  libtorch-dev libopenblas0-pthread
  # tokenizer
  libsentencepiece-dev sentencepiece
  # service
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libspdlog-dev prometheus-cpp-dev libcli11-dev nlohmann-json3-dev
  # the OpenAI-compatible HTTP front-end (--http-listen)
  libcpp-httplib-dev
  # the shared prompt store (libpq), the real PostgreSQL its tests start, nginx in front of
  # replicas (scripts/run-replicas.sh, the rolling-restart test)
  libpq-dev postgresql nginx
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev python3 python3-grpcio python3-protobuf
  # the Python client package's install test (pip with the system's setuptools, offline)
  python3-pip python3-setuptools
  # curl drives the HTTP front-end's tests (so does the `openai` npm package, with the machine's Node)
  curl
  # SHA-256 and constant-time comparison (libcrypto); throwaway certificates for the TLS tests
  libssl-dev openssl
  # the reliability suite (scripts/check-sanitizers.sh): clang-14 for ASan/UBSan/TSan builds,
  # -Wthread-safety and libFuzzer (in clang's runtime); Valgrind for the tokenizer tests
  clang-14 libclang-rt-14-dev valgrind
  # deploy manifest checks
  yamllint python3-yaml
)
if [[ "${1:-}" == "--with-rehearsal" ]]; then
  packages+=(debootstrap)
fi
# The HTTP tests run the `openai` npm package: Debian's Node and npm where the machine has none
# (a Node installed otherwise, with its own npm, is left alone).
if ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi
# Debian 13 has no clang-14: its default clang (19) does the same jobs.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if [[ "$codename" != bookworm ]]; then
  packages=("${packages[@]/#clang-14/clang}")
  packages=("${packages[@]/#libclang-rt-14-dev/libclang-rt-dev}")
fi
# A CUDA libtorch supplied by the caller (GPU images) replaces Debian's CPU-only one.
if [[ "${SOFTSERVE_SKIP_LIBTORCH:-0}" == "1" ]]; then
  packages=("${packages[@]/libtorch-dev}")
fi

missing=()
for p in "${packages[@]}"; do
  [[ -z "$p" ]] && continue
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
apt_opts=(-o DPkg::Lock::Timeout=900 -o Acquire::Retries=3)
export DEBIAN_FRONTEND=noninteractive

echo "install-deps: installing ${missing[*]}"
$sudo apt-get "${apt_opts[@]}" update -q
$sudo apt-get "${apt_opts[@]}" install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
