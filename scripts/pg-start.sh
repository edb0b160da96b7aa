#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the tests on 127.0.0.1 and prints
# the URL to put in RUNYARD_TEST_POSTGRES_URL:
#   export RUNYARD_TEST_POSTGRES_URL=$(scripts/pg-start.sh)
# It needs Debian's postgresql package (its binaries under /usr/lib/postgresql).
# PGDATA_DIR and PGPORT choose where and on which port; the server keeps
# running until `pg_ctl -D "$PGDATA_DIR" stop`.
set -euo pipefail
port=${PGPORT:-55432}
dir=${PGDATA_DIR:-/tmp/runyard-pg-$port}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
if [[ -z "$bindir" ]]; then
  echo "pg-start: PostgreSQL is not installed (apt-get install postgresql)" >&2
  exit 1
fi
run() {
  # PostgreSQL refuses to run as root.
  if [[ $(id -u) == 0 ]]; then
    su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
  else
    "$@"
  fi
}
if [[ ! -f "$dir/PG_VERSION" ]]; then
  mkdir -p "$dir"
  [[ $(id -u) == 0 ]] && chown postgres "$dir"
  run "$bindir/initdb" -D "$dir" -U postgres --auth=trust --no-sync >/dev/null
fi
if ! run "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
  run "$bindir/pg_ctl" -D "$dir" -w -l "$dir/server.log" \
    -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
fi
echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
