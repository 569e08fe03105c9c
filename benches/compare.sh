#!/usr/bin/env bash
# Runs the side-by-side index comparison: installs PostGIS from Debian's packages if the
# local PostgreSQL lacks it, makes sure Redis runs, then `cargo bench --bench geo_compare`.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
if ! psql "$PG_URL" -Atc "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'" | grep -q 1; then
  v=$(ls /etc/postgresql | head -1)
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "postgresql-$v-postgis-3" >/dev/null
fi
(exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no
cargo bench --bench geo_compare
