#!/usr/bin/env bash
# Start a throw-away PostgreSQL and Redis on loopback for the test suite.
# Prints the environment to export; safe to run twice (it reuses running servers).
set -euo pipefail
# Under /tmp: the postgres user must reach its data directory, whoever owns the checkout.
root="${CENTRALITA_SERVICES_DIR:-/tmp/centralita-services}"
pg_port="${CENTRALITA_PG_PORT:-55432}"
redis_port="${CENTRALITA_REDIS_PORT:-56379}"
mkdir -p "$root"
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$pg_bin" ] || { echo "PostgreSQL is not installed" >&2; exit 1; }
if ! "$pg_bin/pg_isready" -h 127.0.0.1 -p "$pg_port" -q 2>/dev/null; then
  if [ ! -f "$root/pg/PG_VERSION" ]; then
    rm -rf "$root/pg"; mkdir -p "$root/pg"; chown postgres "$root/pg" "$root"
    su postgres -s /bin/sh -c "$pg_bin/initdb -D '$root/pg' -U postgres -A trust" >/dev/null
  fi
  su postgres -s /bin/sh -c "$pg_bin/pg_ctl -D '$root/pg' -l '$root/pg.log' -w \
    -o '-h 127.0.0.1 -p $pg_port -k /tmp -c fsync=off -c max_connections=300' start" >/dev/null
  "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -qc 'CREATE DATABASE centralita_test' \
    >/dev/null 2>&1 || true
fi
if ! redis-cli -p "$redis_port" ping >/dev/null 2>&1; then
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --logfile "$root/redis.log" >/dev/null
fi
echo "export CENTRALITA_TEST_POSTGRES_URL=postgresql+asyncpg://postgres@127.0.0.1:$pg_port/centralita_test"
echo "export CENTRALITA_TEST_REDIS_URL=redis://127.0.0.1:$redis_port/0"
