#!/usr/bin/env bash
# Installs only what a built softserve needs at run time (the container's runtime stage).
# Idempotent; waits for the apt lock.
set -euo pipefail
packages=(libtorch1.13 libopenblas0-pthread libsentencepiece0 libgrpc++1.51 libprotobuf32
          libspdlog1.10 libprometheus-cpp-core1.0 libpq5 libcpp-httplib0.11 ca-certificates)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && { echo "install-runtime-deps: nothing to do"; exit 0; }
sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get -o DPkg::Lock::Timeout=900 update -q
$sudo apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}"
$sudo rm -rf /var/lib/apt/lists/*
