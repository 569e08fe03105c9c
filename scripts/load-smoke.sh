#!/usr/bin/env bash
# A short `dabba load` run against a fresh `dabba serve` (embedded store): the generator works
# end to end and its JSON summary has every flow and field. No thresholds: figures come from
# real runs (see README), never from assertions.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --bin dabba
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DABBA_BIND=127.0.0.1:$PORT DABBA_DATA_DIR="$WORK/data" RUST_LOG=warn \
  "${CARGO_TARGET_DIR:-target}/debug/dabba" serve >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
# No secret configured: the server generated one in its data directory; the generator reads it.
DABBA_DATA_DIR="$WORK/data" "${CARGO_TARGET_DIR:-target}/debug/dabba" load --url "http://127.0.0.1:$PORT" --duration 10s \
  --riders 40 --restaurants 8 --customers 40 --orders-per-sec 10 --location-interval 1s \
  --json "$WORK/load.json" --report "$WORK/report" 2>/dev/null
python3 - "$WORK/load.json" "$WORK/report/latency.svg" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
fields = {"count", "errors", "rate_per_s", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"}
flows = {"place_order", "restaurant_accept", "offer_delivery", "offer_accept", "location_update", "push"}
assert {"duration_s", "flows", "ws_connections_held"} <= summary.keys(), summary.keys()
assert flows <= summary["flows"].keys(), summary["flows"].keys()
for name, flow in summary["flows"].items():
    assert fields <= flow.keys(), (name, flow.keys())
assert summary["flows"]["place_order"]["count"] > 0, "no order was placed"
assert open(sys.argv[2]).read().startswith("<svg"), "no plot"
print("load smoke: summary has every flow and field; plot written")
PY
