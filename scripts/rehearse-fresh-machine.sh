#!/usr/bin/env bash
# Rehearses the container recipe without a container engine: builds clean Debian 12 roots with
# debootstrap (mirror taken from this machine's apt sources) and, inside them (chroot), runs
# exactly the Dockerfile's stages — scripts/docker/build-stage.sh in one root,
# scripts/docker/runtime-stage.sh in another with the build's /opt/softserve copied over —
# then starts the server as the unprivileged user through the image's entrypoint and passes a
# health check and one Generate through the CLI. With --readme it also runs README's first
# command (scripts/run.sh) in the build root and checks the server it starts.
#
# Usage: sudo bash scripts/rehearse-fresh-machine.sh [--readme] [--keep]
# Needs root (debootstrap, chroot, mounts) and the Debian mirror; takes 30-60 minutes on 2 cores.
# The source copied in is `git archive HEAD` (what a fresh clone holds). Output: var/rehearsal/log.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${REHEARSAL_DIR:-$repo/var/rehearsal}
readme=0; keep=0
for a in "$@"; do
  case "$a" in --readme) readme=1 ;; --keep) keep=1 ;; *) echo "unknown option $a" >&2; exit 2 ;; esac
done
[[ $(id -u) -eq 0 ]] || { echo "run as root (debootstrap, chroot)" >&2; exit 2; }
mkdir -p "$work"
exec > >(tee "$work/log") 2>&1
# shellcheck source=scripts/lib/debian-root.sh
source "$repo/scripts/lib/debian-root.sh"
mirror=$(debian_mirror)
step "mirror $mirror; installing debootstrap"
bash "$repo/scripts/install-deps.sh" --with-rehearsal

cleanup() {
  unmount_roots
  [[ -n "${server_pid:-}" ]] && kill "$server_pid" 2>/dev/null || true
  if [[ $keep -eq 0 ]]; then rm -rf "$work/build-root" "$work/runtime-root"; fi
}
trap cleanup EXIT

make_root() {  # make_root DIR: a fresh Debian 12 root
  rm -rf "$1"
  prepare_root "$1" bookworm main "$mirror"
}

# --- build stage (Dockerfile: FROM debian:12 AS build; COPY . /src; RUN build-stage.sh) ---
make_root "$work/build-root"
mkdir -p "$work/build-root/src"
git -C "$repo" archive HEAD | tar -x -C "$work/build-root/src"
step "build stage: scripts/docker/build-stage.sh"
in_root "$work/build-root" bash -c 'cd /src && bash scripts/docker/build-stage.sh'
du -sh "$work/build-root/opt/softserve"

# --- runtime stage (FROM debian:12 AS runtime; runtime-stage.sh; COPY --from=build /opt/softserve) ---
make_root "$work/runtime-root"
mkdir -p "$work/runtime-root/tmp/stage"
cp "$repo/scripts/install-runtime-deps.sh" "$repo/scripts/docker/runtime-stage.sh" "$work/runtime-root/tmp/stage/"
step "runtime stage: scripts/docker/runtime-stage.sh"
in_root "$work/runtime-root" bash /tmp/stage/runtime-stage.sh
cp -a "$work/build-root/opt/softserve" "$work/runtime-root/opt/"
key=rehearsal-key
digest=$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)
echo "{\"tenants\": [{\"name\": \"rehearsal\", \"api_key_sha256\": \"$digest\"}]}" > "$work/runtime-root/etc/softserve/tenants.json"

step "start: USER softserve, ENTRYPOINT softserve-entrypoint with the image's CMD"
chroot --userspec=softserve:softserve "$work/runtime-root" /usr/bin/env -i PATH=/opt/softserve/bin:/usr/bin:/bin \
  SOFTSERVE_MODEL_DIR=/models/t5-small-random softserve-entrypoint \
  --store-dir /var/lib/softserve/prompts --tenants-file /etc/softserve/tenants.json \
  --listen 127.0.0.1:50151 --metrics-listen 127.0.0.1:9191 --drain-seconds 25 &
server_pid=$!
healthy=0
for i in $(seq 1 120); do
  if in_root "$work/runtime-root" /opt/softserve/bin/softserve --server 127.0.0.1:50151 --timeout 4 health >/dev/null 2>&1; then
    healthy=1; break
  fi
  sleep 1
done
step "HEALTHCHECK (softserve health)"
in_root "$work/runtime-root" /opt/softserve/bin/softserve --server 127.0.0.1:50151 health
[[ $healthy -eq 1 ]] || { echo "server never became healthy"; exit 1; }
step "one Generate through the CLI"
in_root "$work/runtime-root" /opt/softserve/bin/softserve --server 127.0.0.1:50151 --api-key "$key" \
  generate --text "translate English to German: The house is wonderful." --max-new-tokens 8
in_root "$work/runtime-root" /opt/softserve/bin/softserve --server 127.0.0.1:50151 --api-key "$key" model | head -n 8
step "SIGTERM (drain) and exit status"
kill -TERM "$server_pid"
status=0; wait "$server_pid" || status=$?
echo "server exit status $status"
[[ $status -eq 0 ]] || exit 1
unset server_pid

if [[ $readme -eq 1 ]]; then
  # README's two commands on the fresh build root: the first (scripts/run.sh) must leave a
  # server that answers the CLI; the second (scripts/test.sh, what CI runs) must pass.
  step "README first command in the build root: scripts/run.sh"
  # run.sh ends in `exec softserve-server`, so $! is the server itself (no pkill: the chroot
  # shares this machine's process table).
  in_root "$work/build-root" bash -c 'cd /src || exit 1;
    bash scripts/run.sh --listen 127.0.0.1:50152 --metrics-listen 127.0.0.1:9192 > /tmp/run.log 2>&1 &
    pid=$!;
    for i in $(seq 1 1800); do build/bin/softserve --server 127.0.0.1:50152 health >/dev/null 2>&1 && break;
      kill -0 $pid 2>/dev/null || { echo "run.sh exited"; tail -n 20 /tmp/run.log; exit 1; }; sleep 2; done;
    build/bin/softserve --server 127.0.0.1:50152 health &&
    SOFTSERVE_API_KEY=softserve-dev-key build/bin/softserve --server 127.0.0.1:50152 generate --text "Hello" --max-new-tokens 4;
    ok=$?; kill -TERM $pid; wait $pid; rc=$?; tail -n 5 /tmp/run.log; echo "server exit status $rc";
    [[ $ok -eq 0 && $rc -eq 0 ]]'
  step "README test command in the build root: scripts/test.sh"
  in_root "$work/build-root" bash -c 'cd /src && bash scripts/test.sh 2>&1 | tail -n 25; exit ${PIPESTATUS[0]}'
fi
step "rehearsal passed"
