#!/usr/bin/env bash
# The floor under issue 9's CPU-per-order goal: the CPU one HTTP request costs a server on this
# machine, user and kernel, before any handler work. Two servers, one after the other, each
# driven at the same fixed rate over the same keep-alive connections (benches/floor/client.py):
#   1. a minimal actix-web server (benches/floor/hello.rs: one route, no middleware);
#   2. `dabba serve` (embedded default store) answering /healthz through its two middlewares.
# Prints CPU microseconds per request from /proc, twice each, alternating.
#   bash benches/floor.sh [RATE (3000)] [SECONDS (10)] [CONNECTIONS (50)]
# DABBA_SERVER_BIN runs another build of the server (default: target/release/dabba).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-3000} SECS=${2:-10} CONNS=${3:-50}
CARGO_TARGET_DIR=target/floor cargo build --quiet --release --manifest-path benches/floor/Cargo.toml
[ -n "${DABBA_SERVER_BIN:-}" ] || cargo build --quiet --release --bin dabba
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
WORK=$(mktemp -d)
HPORT=$(free_port) DPORT=$(free_port)
target/floor/release/floor-hello "$HPORT" >"$WORK/hello.log" 2>&1 &
HELLO=$!
(cd "$WORK" && DABBA_BIND=127.0.0.1:$DPORT DABBA_JWT_SECRET=dabba-floor-secret-0123456789abcdef RUST_LOG=warn \
  exec "${DABBA_SERVER_BIN:-$OLDPWD/target/release/dabba}" serve >"$WORK/dabba.log" 2>&1) &
DABBA=$!
trap 'kill $HELLO $DABBA 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
for port in "$HPORT" "$DPORT"; do
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
done
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
echo "machine: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) CPUs; $RATE requests/s for ${SECS}s over $CONNS connections"
for _ in 1 2; do
  for server in "actix-web-minimal $HELLO $HPORT" "dabba-/healthz $DABBA $DPORT"; do
    set -- $server
    read -r u0 s0 < <(ticks "$2")
    n=$(python3 benches/floor/client.py "$3" "$CONNS" "$RATE" "$SECS")
    read -r u1 s1 < <(ticks "$2")
    awk -v name="$1" -v n="$n" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$(getconf CLK_TCK)" \
      'BEGIN {printf "  %-18s %6d requests: user %5.1f us, kernel %5.1f us, total %5.1f us per request\n", name, n, u*1e6/hz/n, s*1e6/hz/n, (u+s)*1e6/hz/n}'
  done
done
