# Sourced by the bench scripts: starts a release `dabba serve` on PostgreSQL + Redis with a
# fresh database and its own Redis keys (streams, cache, limits), and tears them down on exit.
# Sets SERVER (pid), PORT, URL.
# DABBA_SERVER_BIN runs another build of the server (e.g. an older commit's, for a side-by-side
# comparison) against the same load generator.
PG=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
REDIS=${BENCH_REDIS_URL:-redis://127.0.0.1:6379}
DB=dabba_bench_$$
WORK=$(mktemp -d)
# Every process of a bench signs and verifies with this (32+ bytes, as the server requires).
BENCH_SECRET=dabba-bench-secret-0123456789abcdef
# Built binaries given for both sides (a side-by-side of two builds): nothing to build.
if [ -z "${DABBA_SERVER_BIN:-}" ] || [ -z "${DABBA_LOAD_BIN:-}" ]; then
  cargo build --quiet --release --bin dabba
fi
(exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null ||
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no >/dev/null
psql "$PG/postgres" -qc "CREATE DATABASE $DB" >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
# The payment gateways: a fake vendor server in a process of its own (as a real gateway is
# someone else's machine, its CPU is not the server's), from the generator's binary so both
# sides of a comparison talk to the same one. BENCH_VENDORS=in-process runs them inside the
# server instead, as the embedded default does.
VENDORS=
if [ "${BENCH_VENDORS:-process}" = process ]; then
  VPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  RUST_LOG=warn "${DABBA_LOAD_BIN:-target/release/dabba}" fake-vendors --bind "127.0.0.1:$VPORT" >"$WORK/vendors.log" 2>&1 &
  VENDORS=$!
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$VPORT") 2>/dev/null && break; sleep 0.1; done
  SERVER_ENV="DABBA_GATEWAYS=paycore=http://127.0.0.1:$VPORT/paycore,razorpe=http://127.0.0.1:$VPORT/razorpe ${SERVER_ENV:-}"
fi
# shellcheck disable=SC2086
env DABBA_BIND=127.0.0.1:$PORT DABBA_STREAM_PREFIX="$DB" DATABASE_URL="$PG/$DB" REDIS_URL="$REDIS" DABBA_JWT_SECRET="$BENCH_SECRET" DABBA_WS_MAX_PER_IP=1000000 \
  RUST_LOG=warn ${SERVER_ENV:-} "${DABBA_SERVER_BIN:-target/release/dabba}" serve >"$WORK/server.log" 2>&1 &
SERVER=$!
cleanup() {
  curl -s "$URL/metrics" -H "Authorization: Bearer $("${DABBA_LOAD_BIN:-target/release/dabba}" token --role ops --sub 00000000-0000-0000-0000-000000000001 --jwt-secret "$BENCH_SECRET")" \
    >"${BENCH_KEEP:-/tmp}/dabba-bench-metrics.txt" 2>/dev/null || true
  # Rows written per table over the run: what each order costs the store.
  psql "$PG/$DB" -qAc "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, seq_scan, idx_scan FROM pg_stat_user_tables WHERE n_tup_ins + n_tup_upd + n_tup_del > 0 ORDER BY n_tup_ins + n_tup_upd DESC" \
    >"${BENCH_KEEP:-/tmp}/dabba-bench-tables.txt" 2>/dev/null || true
  cp "$WORK/server.log" "${BENCH_KEEP:-/tmp}/dabba-bench-server.log" 2>/dev/null || true
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  if [ -n "$VENDORS" ]; then kill "$VENDORS" 2>/dev/null || true; wait "$VENDORS" 2>/dev/null || true; fi
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
  # The run's streams, cache and rate-limit keys go with its database: streams are numbered
  # by the database's log, so a later run reusing them would find them ahead of its own log.
  if command -v redis-cli >/dev/null; then
    redis-cli -u "$REDIS" --scan --pattern "$DB:*" | xargs -r -n 500 redis-cli -u "$REDIS" DEL >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 1 200); do curl -sf "$URL/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
echo "server pid $SERVER at $URL" >&2
export DABBA_JWT_SECRET="$BENCH_SECRET"
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$SERVER/status"; }
