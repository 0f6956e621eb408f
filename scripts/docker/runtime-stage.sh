#!/usr/bin/env bash
# The container's runtime stage (also run by scripts/rehearse-fresh-machine.sh): runtime
# libraries only, an unprivileged user, and the volume directories it owns.
set -euo pipefail
bash "$(dirname "$0")/../install-runtime-deps.sh"
id softserve >/dev/null 2>&1 || useradd --system --uid 10001 --user-group --home-dir /var/lib/softserve --shell /usr/sbin/nologin softserve
install -d -o softserve -g softserve /models /var/lib/softserve /etc/softserve
