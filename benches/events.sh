#!/usr/bin/env bash
# The event backbone under load (issue 11): one `dabba load` run against a release server on
# PostgreSQL + Redis with the stream publisher and the consumers on (benches/load.sh), then the
# server's own figures from /metrics: events published to Redis Streams per second, commit →
# Redis-ack lag, consumer lag. Push latency from commit to the client's socket is the load
# report's `push` row (the client's receive time minus the server's `sent_at_us`, which the
# relay stamps right after the commit).
#   RATE=1000 DURATION=60 bash benches/events.sh
# SERVER_BIN=path/to/dabba measures another build (e.g. the commit before the backbone).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-1000}
DURATION=${DURATION:-60}
KEEP=$(mktemp -d)
export BENCH_KEEP=$KEEP
PREFIX=bench-$$-$RANDOM
export SERVER_ENV="DABBA_STREAM_PREFIX=$PREFIX ${SERVER_ENV:-}"
[ -n "${SERVER_BIN:-}" ] && export DABBA_SERVER_BIN=$SERVER_BIN
[ -n "${LOAD_BIN:-}" ] && export DABBA_LOAD_BIN=$LOAD_BIN
bash benches/load.sh --duration "${DURATION}s" --orders-per-sec "$RATE" --location-interval 5s "$@"
m=$KEEP/dabba-bench-metrics.txt
quantile() { awk -v name="$1" -v q="$2" 'index($0, name "{quantile=\"" q "\"}") == 1 {printf "%.1f", $2 * 1000}' "$m"; }
published=$(awk '/^dabba_stream_published_total/ {s += $2} END {print s + 0}' "$m")
echo "== event backbone over the run (${DURATION} s at ${RATE} orders/s offered)"
echo "events published to Redis Streams: $published ($(echo "$published / $DURATION" | bc)/s)"
echo "commit → Redis ack lag ms: p50 $(quantile dabba_stream_publish_lag_seconds 0.5), p99 $(quantile dabba_stream_publish_lag_seconds 0.99), max $(quantile dabba_stream_publish_lag_seconds 1)"
echo "publish errors: $(awk '/^dabba_stream_publish_errors_total/ {s += $2} END {print s + 0}' "$m")"
echo "consumers at the end (lag = events not yet delivered):"
grep -E '^dabba_consumer_(lag|handled_total)' "$m" | sed 's/^/  /' || true
rm -rf "$KEEP"
# The run's streams (hundreds of MB at these rates) are not kept.
redis-cli -u "${BENCH_REDIS_URL:-redis://127.0.0.1:6379}" --scan --pattern "$PREFIX:*" |
  xargs -r -n 200 redis-cli -u "${BENCH_REDIS_URL:-redis://127.0.0.1:6379}" DEL >/dev/null
