#!/usr/bin/env bash
# Builds softserve and runs its whole test suite against current libtorch: Debian 13 (trixie)'s
# libtorch 2.6 with gcc 14, in a clean debootstrap root, then the fuzz targets with Debian 13's
# own clang (ASan+UBSan). Debian 12's libtorch 1.13 is what scripts/test.sh checks on the host;
# .ci/run runs both, so neither can regress.
#
# Usage: sudo bash scripts/check-libtorch2.sh [--keep]
#   --keep  keep the root (var/libtorch2/root) for a second run or a look inside
# Needs root (debootstrap, chroot, mounts) and the Debian mirror. About 25 minutes on 2 cores.
# The source copied in is `git archive HEAD` (what a fresh clone holds); log: var/libtorch2/log.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${LIBTORCH2_DIR:-$repo/var/libtorch2}
root=$work/root
keep=0
for a in "$@"; do
  case "$a" in --keep) keep=1 ;; *) echo "unknown option $a" >&2; exit 2 ;; esac
done
[[ $(id -u) -eq 0 ]] || { echo "check-libtorch2: run as root (debootstrap, chroot)" >&2; exit 2; }
mkdir -p "$work"
exec > >(tee "$work/log") 2>&1
# shellcheck source=scripts/lib/debian-root.sh
source "$repo/scripts/lib/debian-root.sh"
bash "$repo/scripts/install-deps.sh" --with-rehearsal

cleanup() {
  unmount_roots
  if [[ $keep -eq 0 ]]; then rm -rf "$root"; fi
}
trap cleanup EXIT

prepare_root "$root" trixie "main contrib non-free" "$(debian_mirror)"
rm -rf "$root/src"
mkdir -p "$root/src"
git -C "$repo" archive HEAD | tar -x -C "$root/src"

step "dependencies (scripts/install-deps.sh inside the root)"
in_root "$root" bash -c 'cd /src && bash scripts/install-deps.sh'
in_root "$root" bash -c 'dpkg-query -W libtorch-dev libgrpc++-dev gcc clang; . /etc/os-release; echo "$PRETTY_NAME"'

step "build and the whole CTest suite (gcc, libtorch 2.6)"
in_root "$root" bash -c 'cd /src && bash scripts/build.sh && cd build && ctest --output-on-failure --no-tests=error -j2'

step "scripts/device-check.sh --device cpu (the GPU check's dry run; GoogleTest from source, as on a GPU machine)"
in_root "$root" bash -c 'cd /src && SOFTSERVE_GTEST_SOURCE_DIR=/usr/src/googletest bash scripts/device-check.sh --device cpu --threads 2'

step "the fuzz targets with Debian 13's clang"
in_root "$root" bash -c 'cd /src && SOFTSERVE_FUZZ_SECONDS=${SOFTSERVE_FUZZ_SECONDS:-10} bash scripts/check-sanitizers.sh fuzz'
step "libtorch 2.6: build and every test passed"
