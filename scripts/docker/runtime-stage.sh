#!/usr/bin/env bash
# The container's runtime stage (also run by scripts/rehearse-fresh-machine.sh): runtime
# libraries only, an unprivileged user, and the volume directories it owns.
set -euo pipefail
# The Dockerfile copies both scripts into one folder; in the repository it is one level up.
here=$(dirname "$0")
deps=$here/install-runtime-deps.sh
[[ -f "$deps" ]] || deps=$here/../install-runtime-deps.sh
bash "$deps"
id softserve >/dev/null 2>&1 || useradd --system --uid 10001 --user-group --home-dir /var/lib/softserve --shell /usr/sbin/nologin softserve
install -d -o softserve -g softserve /models /var/lib/softserve /etc/softserve
