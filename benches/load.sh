#!/usr/bin/env bash
# One `dabba load` run against a fresh release `dabba serve` on PostgreSQL + Redis (a new
# database per run), both on this machine. Extra arguments go to `dabba load`, e.g.
#   bash benches/load.sh --duration 30s --orders-per-sec 1400 --json load.json
# SERVER_ENV adds environment to the server (e.g. "DABBA_RATE_WRITES_PER_SEC=100000").
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/server.sh
# CPU seconds (user + system) of a process and its threads, or of every process of a user.
cpu_of_pid() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$1/stat"; }
cpu_of_user() {
  local t=0 pid
  for pid in $(pgrep -u "$1"); do t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0))); done
  echo "scale=1; $t / $(getconf CLK_TCK)" | bc
}
# Busy CPU seconds of the whole machine (all but idle and iowait).
cpu_busy() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / {printf "%.1f", ($2 + $3 + $4 + $7 + $8) / hz}' /proc/stat; }
# CPU seconds per server thread name (workers, arbiters, tokio), to see which one saturates.
threads_of() { for t in /proc/"$1"/task/*; do awk -v hz="$(getconf CLK_TCK)" '{gsub(/[()]/, "", $2); print $2, ($14 + $15) / hz}' "$t/stat" 2>/dev/null; done | awk '{a[$1] += $2} END {for (k in a) print k, a[k]}' | sort; }
threads0=$(threads_of "$SERVER")
vendors_cpu() { if [ -n "$VENDORS" ]; then cpu_of_pid "$VENDORS"; else echo 0; fi; }
busy0=$(cpu_busy); server0=$(cpu_of_pid "$SERVER"); vendors0=$(vendors_cpu); pg0=$(cpu_of_user postgres); REDIS_PID=$(pgrep -o redis-server || echo self); redis0=$(cpu_of_pid "$REDIS_PID")
wal0=$(psql "$PG/postgres" -Atc "SELECT pg_current_wal_insert_lsn()")
start=$(date +%s.%N)
/usr/bin/time -f "%U %S" -o "$WORK/load.time" "${DABBA_LOAD_BIN:-target/release/dabba}" load --url "$URL" "$@"
wall=$(echo "$(date +%s.%N) - $start" | bc)
threads1=$(threads_of "$SERVER")
busy1=$(cpu_busy); server1=$(cpu_of_pid "$SERVER"); vendors1=$(vendors_cpu); pg1=$(cpu_of_user postgres); redis1=$(cpu_of_pid "$REDIS_PID")
read -r lu ls <"$WORK/load.time"
# Write-ahead log written over the run (the whole cluster's: nothing else runs during a bench).
wal_mb=$(psql "$PG/postgres" -Atc "SELECT round(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$wal0') / 1e6, 1)")
{
  echo "wall ${wall%???????}s; CPU seconds over the run (2 cores = $(echo "2 * $wall" | bc | cut -d. -f1)s available):"
  echo "  dabba serve  $(echo "$server1 - $server0" | bc)"
  echo "  dabba load   $(echo "$lu + $ls" | bc)"
  echo "  postgres     $(echo "$pg1 - $pg0" | bc)"
  echo "  redis        $(echo "$redis1 - $redis0" | bc)"
  echo "  fake vendors $(echo "$vendors1 - $vendors0" | bc) ($([ -n "$VENDORS" ] && echo "own process" || echo "inside dabba serve"))"
  echo "  machine busy $(echo "$busy1 - $busy0" | bc)"
  echo "postgres WAL written: $wal_mb MB"
  echo "server RSS: $(awk '/VmRSS/ {print $2, $3}' "/proc/$SERVER/status")"
  # What the figures depend on besides the build: the CPU and how PostgreSQL is set up (with
  # autovacuum off, dead rows pile up within a run).
  echo "machine: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) CPUs; PostgreSQL $(psql "$PG/postgres" -Atc "SHOW server_version" 2>/dev/null | cut -d' ' -f1), autovacuum $(psql "$PG/postgres" -Atc "SHOW autovacuum" 2>/dev/null)"
  echo "server CPU seconds by thread:"
  join -a2 -e0 -o 0,1.2,2.2 <(echo "$threads0") <(echo "$threads1") |
    awk '{printf "  %-22s %.1f\n", $1, $3 - $2}' | sort -k2 -nr | head -8
} >&2
