#!/usr/bin/env bash
# Resident memory of `dabba serve` per idle rider and per live order, at 320,000 riders
# (Zomato's fleet): registers RIDERS idle riders (placed, available, no socket), then places
# ORDERS orders that no restaurant answers (they stay live), reading the server's RSS before
# and after each step. On PostgreSQL + Redis, release build.
#   bash benches/memory.sh            # RIDERS=320000 ORDERS=20000 by default
set -euo pipefail
cd "$(dirname "$0")/.."
RIDERS=${RIDERS:-320000}
ORDERS=${ORDERS:-20000}
source benches/server.sh
metric() {
  curl -sf -H "Authorization: Bearer $(target/release/dabba token --role ops --sub 00000000-0000-0000-0000-000000000001)" \
    "$URL/metrics" | awk -v m="$1" '$1 == m {print $2}'
}
base=$(rss_kib)
echo "after start: RSS $base KiB" >&2
target/release/dabba load --url "$URL" --duration 0s --riders 0 --idle-riders "$RIDERS" \
  --restaurants 100 --customers 1000 --orders-per-sec 0 >/dev/null
sleep 3 # position flushes and commits settle
with_riders=$(rss_kib)
echo "with $(metric dabba_riders) riders ($(metric dabba_riders_available) available): RSS $with_riders KiB" >&2
secs=$((ORDERS / 2000))
target/release/dabba load --url "$URL" --duration "${secs}s" --riders 0 --restaurants 100 \
  --customers 1000 --orders-per-sec 2000 --think-time 1h --cancel-ratio 0 --update-ratio 0 >/dev/null
sleep 3
with_orders=$(rss_kib)
live=$(metric dabba_live_orders)
echo "with $live live orders: RSS $with_orders KiB" >&2
python3 - "$base" "$with_riders" "$with_orders" "$RIDERS" "$live" <<'PY'
import sys
base, riders_rss, orders_rss, riders, live = (float(x) for x in sys.argv[1:])
print(f"idle rider: {(riders_rss - base) * 1024 / riders:,.0f} bytes ({riders:,.0f} riders, +{(riders_rss - base) / 1024:,.1f} MiB)")
print(f"live order: {(orders_rss - riders_rss) * 1024 / live:,.0f} bytes ({live:,.0f} orders, +{(orders_rss - riders_rss) / 1024:,.1f} MiB)")
PY
