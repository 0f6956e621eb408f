# Helpers for the scripts that work in clean Debian roots (debootstrap + chroot), sourced by
# scripts/rehearse-fresh-machine.sh and scripts/check-libtorch2.sh. They need root. A script
# that sources this calls unmount_roots in its EXIT trap.

mounted=()

step() { echo; echo "=== $(date -u +%H:%M:%S) $*"; }

# The Debian mirror this machine's apt uses (deb.debian.org if none is configured).
debian_mirror() {
  local mirror
  mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | head -n1 | awk '{print $2}')
  [[ -n "$mirror" ]] || mirror=$(grep -hs '^deb ' /etc/apt/sources.list | head -n1 | awk '{print $2}')
  echo "${mirror:-http://deb.debian.org/debian}"
}

# prepare_root ROOT SUITE COMPONENTS MIRROR: a minbase SUITE root at ROOT (an existing one is
# reused; remove it first for a fresh one), apt pointed at SUITE's COMPONENTS, the host's DNS,
# and /proc, /sys, /dev bind-mounted.
prepare_root() {
  local root=$1 suite=$2 components=$3 mirror=$4
  if [[ ! -x "$root/usr/bin/apt-get" ]]; then
    rm -rf "$root"
    step "debootstrap $suite -> $root ($mirror)"
    debootstrap --variant=minbase "$suite" "$root" "$mirror" > "$root.debootstrap.log" 2>&1 || {
      tail -n 30 "$root.debootstrap.log"; exit 1; }
  fi
  echo "deb $mirror $suite $components" > "$root/etc/apt/sources.list"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # The root trusts what the host trusts: a host behind a TLS-inspecting proxy adds its CA under
  # /usr/local/share/ca-certificates, and HTTPS from the root (npm's registry, for the HTTP
  # front-end's `openai` package test) needs it too. ca-certificates (installed by
  # install-deps.sh) folds them into the bundle; npm is pointed at that bundle.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" > /dev/null; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    if [[ -x "$root/usr/sbin/update-ca-certificates" ]]; then
      chroot "$root" update-ca-certificates > /dev/null 2>&1 || true
    fi
  fi
  echo "cafile=/etc/ssl/certs/ca-certificates.crt" > "$root/etc/npmrc"
  # Packages must not start their daemons inside the root (postgresql, nginx): they would share
  # the host's ports and outlive the run. Tests start their own.
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
  chmod +x "$root/usr/sbin/policy-rc.d"
  local fs
  for fs in proc sys dev; do
    mount --bind "/$fs" "$root/$fs"
    mounted+=("$root/$fs")
  done
}

unmount_roots() {
  local m
  for m in "${mounted[@]:-}"; do [[ -n "$m" ]] && umount -l "$m" 2>/dev/null || true; done
}

# in_root ROOT COMMAND...: runs COMMAND inside ROOT with a clean environment.
in_root() {
  local root=$1
  shift
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"
}
