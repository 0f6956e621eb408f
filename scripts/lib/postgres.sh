# Sourced by scripts that start a PostgreSQL of their own from Debian's postgresql package
# (run-replicas.sh, store-bench.sh). PostgreSQL refuses to run as root: as root, its commands run
# as the postgres user the package creates.

# The newest /usr/lib/postgresql/<version>/bin.
pg_bin() { ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1; }

as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# pg_start DIR PORT [initdb options...]: a cluster in DIR/data (created if absent, user
# "softserve", trust authentication) started on 127.0.0.1:PORT, its socket and log in DIR.
pg_start() {
  local dir=$1 port=$2 bin
  shift 2
  bin=$(pg_bin)
  mkdir -p "$dir"
  if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir"; fi
  if [[ ! -d $dir/data ]]; then
    as_pg "$bin/initdb" -D "$dir/data" -A trust -U softserve -E UTF8 --locale=C "$@" >/dev/null
  fi
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1" -w start >/dev/null
}

# pg_stop DIR: fast shutdown of the cluster pg_start started there.
pg_stop() { as_pg "$(pg_bin)/pg_ctl" -D "$1/data" -m fast -w stop >/dev/null; }
