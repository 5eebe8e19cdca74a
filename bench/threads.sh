#!/usr/bin/env bash
# CPU per create by thread group: starts a fresh server, warms it up, runs
# wrk for 10 s and reads every server thread's run time
# and run-queue wait (/proc/PID/task/*/schedstat) and wrk's user+system
# time over 8 s of it. Prints requests/s and, per request, the µs of CPU for
# the runtime workers, the SQLite threads (writer and checkpointer) and wrk,
# and the µs each server group spent runnable but waiting for a core.
#
#   bench/threads.sh [SIGNOFF_BINARY]           # DURABILITY=normal, CONNECTIONS=128 to vary
#   bench/threads.sh echo                       # the bare echo instead
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-target/release/signoff}"
CONNECTIONS="${CONNECTIONS:-64}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
TMP="$(mktemp -d)"
. bench/lib.sh
trap stop_all EXIT
if [ "$BIN" = echo ]; then
  URL=$(start server "echo listening on" target/release/echo-server)/v1/requests
else
  URL=$(start server "signoff listening on" "$BIN" serve --listen 127.0.0.1:0 \
    --database "$TMP/bench.db" --durability "${DURABILITY:-full}")/v1/requests
fi
PID=$(cat "$TMP/server.pid")
wrk -t2 -c"$CONNECTIONS" -d3s -s bench/wrk/create.lua "$URL" >/dev/null
# tid/name nanoseconds-on-CPU nanoseconds-waiting-for-a-CPU, one line per
# server thread.
snapshot() {
  for task in /proc/"$PID"/task/*; do
    echo "$(basename "$task")/$(tr ' ' _ <"$task/comm") $(cut -d' ' -f1,2 "$task/schedstat")"
  done | sort
}
wrk -t2 -c"$CONNECTIONS" -d10s -s bench/wrk/create.lua "$URL" >"$TMP/wrk.txt" &
WRK=$!
sleep 1
snapshot >"$TMP/before"; w0=$(awk '{print $14 + $15}' "/proc/$WRK/stat"); t0=$(date +%s%N)
sleep 8
snapshot >"$TMP/after"; w1=$(awk '{print $14 + $15}' "/proc/$WRK/stat"); t1=$(date +%s%N)
wait "$WRK"
rps=$(sed -n 's/^Requests\/sec: *//p' "$TMP/wrk.txt")
unit=create; [ "$BIN" = echo ] && unit=echo
join "$TMP/before" "$TMP/after" | awk -v rps="$rps" -v unit="$unit" -v us=$(( (t1 - t0) / 1000 )) \
  -v wrk_us=$(( (w1 - w0) * 1000000 / $(getconf CLK_TCK) )) '
  { group = $1; sub(/^[0-9]+\//, "", group); sub(/[-0-9]*$/, "", group); cpu[group] += ($4 - $2) / 1000; wait[group] += ($5 - $3) / 1000 }
  END {
    n = rps * us / 1e6
    printf "%.0f req/s\n", rps
    for (group in cpu) if (cpu[group] > 0) printf "  %-20s %6.2f µs per %s, waited for a core %6.2f\n", group, cpu[group] / n, unit, wait[group] / n
    printf "  %-20s %6.2f µs per %s\n", "wrk", wrk_us / n, unit
  }'
