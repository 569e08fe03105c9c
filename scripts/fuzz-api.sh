#!/usr/bin/env bash
# Checks the running API against its own OpenAPI document: the document must be valid OpenAPI
# (openapi-spec-validator), and schemathesis (PyPI) runs every check it has (`--checks all`):
# every operation, generated and mutated inputs, stateful sequences, undeclared methods,
# missing auth, response schemas and statuses. Fails on any failure, and on any 5xx.
# `GET /v1/ws` is left out: it is a WebSocket handshake, which an HTTP fuzzer cannot hold
# open; tests/api/ws.rs and tests/api/sockets.rs cover it.
#
#   FUZZ_MAX_EXAMPLES  examples per operation and phase (default 20)
#   FUZZ_SEED          reproduce a run (printed at the end of each run)
#   FUZZ_DATABASE_URL  run the server on this database (default: embedded SQLite)
#   FUZZ_REDIS_URL     rate-limit buckets in this Redis (default: in-process)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/fuzz-venv
if [ ! -x "$VENV/bin/schemathesis" ] || [ ! -x "$VENV/bin/openapi-spec-validator" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check schemathesis==4.32.5 openapi-spec-validator==0.9.0
fi

cargo build --quiet --bin dabba
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Limits off: the fuzzer is one subject sending thousands of requests.
env ${FUZZ_DATABASE_URL:+DATABASE_URL=$FUZZ_DATABASE_URL} ${FUZZ_REDIS_URL:+REDIS_URL=$FUZZ_REDIS_URL} \
  DABBA_BIND=127.0.0.1:$PORT DABBA_DATA_DIR="$WORK/data" \
  DABBA_RATE_WRITES_PER_SEC=1000000 DABBA_RATE_READS_PER_SEC=1000000 DABBA_RATE_LOCATION_PER_SEC=1000000 \
  RUST_LOG=warn "${CARGO_TARGET_DIR:-target}/debug/dabba" serve >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

OPS=$(DABBA_DATA_DIR="$WORK/data" "${CARGO_TARGET_DIR:-target}/debug/dabba" token --role ops --sub 00000000-0000-0000-0000-000000000001)
SEED_ARGS=()
[ -n "${FUZZ_SEED:-}" ] && SEED_ARGS=(--seed "$FUZZ_SEED")
status=0
curl -sf "http://127.0.0.1:$PORT/openapi.json" >"$WORK/openapi.json"
"$VENV/bin/openapi-spec-validator" "$WORK/openapi.json"
"$VENV/bin/schemathesis" --config-file scripts/schemathesis.toml run "http://127.0.0.1:$PORT/openapi.json" \
  --checks all --exclude-path /v1/ws --max-examples "${FUZZ_MAX_EXAMPLES:-20}" \
  -H "Authorization: Bearer $OPS" "${SEED_ARGS[@]}" \
  --report ndjson --report-ndjson-path "$WORK/run.ndjson" || status=$?

total=$(grep -o '"status_code": *[0-9]*' "$WORK/run.ndjson" | wc -l)
server_errors=$(grep -o '"status_code": *5[0-9][0-9]' "$WORK/run.ndjson" | wc -l || true)
backends="sqlite, in-process limits"
[ -n "${FUZZ_DATABASE_URL:-}" ] && backends="postgresql, ${FUZZ_REDIS_URL:+redis }limits"
echo "schemathesis ($backends): $total requests, $server_errors with a 5xx status"
echo "by status:"; grep -o '"status_code": *[0-9]*' "$WORK/run.ndjson" | sed 's/.*: *//' | sort | uniq -c | sort -rn
if [ "$status" -ne 0 ] || [ "$server_errors" -ne 0 ]; then
  echo "--- server log ---"; tail -50 "$WORK/server.log"
  exit 1
fi
