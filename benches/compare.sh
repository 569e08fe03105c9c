#!/usr/bin/env bash
# Every side-by-side comparison, one run each on this machine: the rider index against Redis
# GEOSEARCH and PostGIS KNN (same riders, same queries), then durable placement against
# pgbench single-row inserts. Installs what it needs from Debian's packages (PostGIS, the
# PostgreSQL client for pgbench) and starts Redis if it is down; prints tables with ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
if ! psql "$PG_URL" -Atc "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'" | grep -q 1; then
  v=$(ls /etc/postgresql | head -1)
  apt_install "postgresql-$v-postgis-3"
fi
command -v pgbench >/dev/null || apt_install postgresql-client
(exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no
echo "== rider index: dabba vs Redis GEOSEARCH vs PostGIS KNN"
cargo bench --bench geo_compare
echo "== durable placement: group commit vs one transaction per order vs pgbench"
cargo bench --bench placement
