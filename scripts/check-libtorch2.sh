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
step() { echo; echo "=== $(date -u +%H:%M:%S) $*"; }

mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | head -n1 | awk '{print $2}')
[[ -n "$mirror" ]] || mirror=$(grep -hs '^deb ' /etc/apt/sources.list | head -n1 | awk '{print $2}')
[[ -n "$mirror" ]] || mirror=http://deb.debian.org/debian
bash "$repo/scripts/install-deps.sh" --with-rehearsal

mounted=()
cleanup() {
  for m in "${mounted[@]:-}"; do [[ -n "$m" ]] && umount -l "$m" 2>/dev/null || true; done
  if [[ $keep -eq 0 ]]; then rm -rf "$root"; fi
}
trap cleanup EXIT

if [[ ! -x "$root/usr/bin/apt-get" ]]; then
  rm -rf "$root"
  step "debootstrap trixie -> $root ($mirror)"
  debootstrap --variant=minbase trixie "$root" "$mirror" > "$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log"; exit 1; }
fi
echo "deb $mirror trixie main contrib non-free" > "$root/etc/apt/sources.list"
cp /etc/resolv.conf "$root/etc/resolv.conf"
for fs in proc sys dev; do
  mount --bind "/$fs" "$root/$fs"
  mounted+=("$root/$fs")
done
rm -rf "$root/src"
mkdir -p "$root/src"
git -C "$repo" archive HEAD | tar -x -C "$root/src"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }

step "dependencies (scripts/install-deps.sh inside the root)"
in_root bash -c 'cd /src && bash scripts/install-deps.sh'
in_root bash -c 'dpkg-query -W libtorch-dev libgrpc++-dev gcc clang; . /etc/os-release; echo "$PRETTY_NAME"'

step "build and the whole CTest suite (gcc, libtorch 2.6)"
in_root bash -c 'cd /src && bash scripts/build.sh && cd build && ctest --output-on-failure --no-tests=error -j2'

step "the fuzz targets with Debian 13's clang"
in_root bash -c 'cd /src && SOFTSERVE_FUZZ_SECONDS=${SOFTSERVE_FUZZ_SECONDS:-10} bash scripts/check-sanitizers.sh fuzz'
step "libtorch 2.6: build and every test passed"
