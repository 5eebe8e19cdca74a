#!/usr/bin/env bash
# Signoff's benchmark: the release server driven over HTTP by wrk, beside a
# bare axum echo handler measured in the same run. Prints a summary and keeps
# every raw output in bench/out/. See docs/BENCHMARKS.md.
#
#   bench/run.sh                     # defaults below
#   DURATION=30s SEED=1000000 bench/run.sh
#   DATABASE=postgres://postgres@127.0.0.1/signoff_bench bench/run.sh   # on PostgreSQL
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-15s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
SEED="${SEED:-1000000}"
WAKEUPS="${WAKEUPS:-2000}"
DATABASE="${DATABASE:-}"   # empty: a fresh SQLite file
OUT="bench/out"
mkdir -p "$OUT"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }

cargo build --release --quiet -p signoff -p signoff-bench
BIN=target/release
TMP="$(mktemp -d)"
LOGS="$OUT"
. bench/lib.sh
trap stop_all EXIT

rps() { sed -n 's/^Requests\/sec: *//p' "$1"; }
non2xx() { local n; n=$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' "$1"); echo "${n:-0}"; }
pct() { awk -v p="$2" '$1 == p"%" {print $2}' "$1"; }

ECHO=$(start echo "echo listening on" "$BIN/echo-server")
DB="${DATABASE:-$TMP/bench.db}"
SIGNOFF=$(start signoff "signoff listening on" \
  "$BIN/signoff" serve --listen 127.0.0.1:0 --database "$DB" --durability full)
SIGNOFF_PID=$(cat "$TMP/signoff.pid")
echo "echo: $ECHO  signoff: $SIGNOFF (pid $SIGNOFF_PID, $DB)"

wrk_run() { # name, url, extra args...
  local name="$1" url="$2"; shift 2
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url" >"$OUT/$name.txt"
  echo "  $name: $(rps "$OUT/$name.txt") req/s, non-2xx: $(non2xx "$OUT/$name.txt")"
}

echo "== throughput ($THREADS wrk threads, $CONNECTIONS connections, $DURATION each)"
wrk_run echo "$ECHO/v1/requests" -s bench/wrk/create.lua
wrk_run create "$SIGNOFF/v1/requests" -s bench/wrk/create.lua
wrk_run cycle "$SIGNOFF" -s bench/wrk/cycle.lua

echo "== wake-up latency"
"$BIN/wakeup" "$SIGNOFF" "$WAKEUPS" | tee "$OUT/wakeup.txt"

echo "== seeding $SEED more requests (memory sampled as the database grows)"
"$BIN/seed" "$SIGNOFF" "$SIGNOFF_PID" "$SEED" 128 | tee "$OUT/seed.txt"

echo "== GET /v1/requests?status=pending&limit=50 over the seeded database (8 connections)"
wrk -t"$THREADS" -c8 -d"$DURATION" --latency \
  "$SIGNOFF/v1/requests?status=pending&limit=50" >"$OUT/pending.txt"
echo "  pending: $(rps "$OUT/pending.txt") req/s, p50 $(pct "$OUT/pending.txt" 50), p99 $(pct "$OUT/pending.txt" 99)"

echo "== the store alone (no HTTP): 200000 creates from 64 tasks"
"$BIN/store" "${DATABASE:-$TMP/store.db}" 200000 64 | tee "$OUT/store.txt"

ECHO_RPS=$(rps "$OUT/echo.txt"); CREATE_RPS=$(rps "$OUT/create.txt")
CYCLES=$(sed -n 's/.*cycles_per_sec=//p' "$OUT/cycle.txt")
cat <<SUMMARY | tee "$OUT/summary.txt"

== summary ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))
bare axum echo          $ECHO_RPS req/s
durable creates         $CREATE_RPS req/s  ($(awk -v a="$CREATE_RPS" -v b="$ECHO_RPS" 'BEGIN{printf "%.2f", a/b}') of echo), p99 $(pct "$OUT/create.txt" 99)
create+approve cycles   $CYCLES cycles/s
wake-up                 $(sed -n 's/^approve answered -> waiter answered: //p' "$OUT/wakeup.txt")
pending list at $SEED+   p50 $(pct "$OUT/pending.txt" 50), p99 $(pct "$OUT/pending.txt" 99), $(rps "$OUT/pending.txt") req/s
store alone             $(sed -n 's/.*callers: //p' "$OUT/store.txt")
memory                  $(sed -n '2p' "$OUT/seed.txt" | awk '{print $2}') MiB empty -> $(tail -2 "$OUT/seed.txt" | head -1 | awk '{print $2}') MiB at $SEED
SUMMARY
