#!/usr/bin/env bash
# Two `signoff serve` replicas on one PostgreSQL database: durable creates
# with wrk driving both at once (the rates add up), and the wake-up latency
# of a waiter on one replica when the other approves. See docs/BENCHMARKS.md.
#
#   DATABASE=postgres://postgres@127.0.0.1/signoff_bench bench/replicas.sh
set -euo pipefail
cd "$(dirname "$0")/.."

: "${DATABASE:?set DATABASE to a postgres:// URL of an empty (or bench) database}"
DURATION="${DURATION:-15s}"
CONNECTIONS="${CONNECTIONS:-32}"
WAKEUPS="${WAKEUPS:-2000}"
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

replica() { start "$1" "signoff listening on" "$BIN/signoff" serve --listen 127.0.0.1:0 --database "$DATABASE"; }
A=$(replica replica-a)
B=$(replica replica-b)
echo "replicas: $A $B on $DATABASE"

echo "== durable creates, one wrk per replica ($CONNECTIONS connections each, $DURATION)"
wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/wrk/create.lua "$A/v1/requests" >"$OUT/replica-a.txt" &
wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/wrk/create.lua "$B/v1/requests" >"$OUT/replica-b.txt"
wait %1 2>/dev/null || true
RA=$(rps "$OUT/replica-a.txt"); RB=$(rps "$OUT/replica-b.txt")
echo "  A: $RA req/s  B: $RB req/s  together: $(awk -v a="$RA" -v b="$RB" 'BEGIN{printf "%.0f", a+b}') req/s"

echo "== one replica alone, same load"
wrk -t2 -c"$((CONNECTIONS * 2))" -d"$DURATION" --latency -s bench/wrk/create.lua "$A/v1/requests" >"$OUT/replica-alone.txt"
echo "  A alone: $(rps "$OUT/replica-alone.txt") req/s"

echo "== wake-up across replicas (waiter on A, approval on B)"
"$BIN/wakeup" "$A" "$WAKEUPS" "$B" | tee "$OUT/wakeup-replicas.txt"
