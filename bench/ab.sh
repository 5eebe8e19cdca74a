#!/usr/bin/env bash
# A/B of two Signoff server binaries over HTTP: each round runs the bare
# echo, then OLD, then NEW (fresh SQLite files), 8 s each, and prints each
# one's rate as a fraction of that round's echo and its CPU per create
# (user + system time from /proc). Rounds alternate so that a machine
# whose speed drifts treats both alike.
#
#   OLD=/tmp/old/signoff NEW=target/release/signoff ROUNDS=4 bench/ab.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OLD:?OLD=path to the baseline signoff binary}"
: "${NEW:=target/release/signoff}"
ROUNDS="${ROUNDS:-4}"; DURATION="${DURATION:-8s}"; CONNECTIONS="${CONNECTIONS:-64}"
ECHO_BIN="${ECHO_BIN:-target/release/echo-server}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
TMP="$(mktemp -d)"
. bench/lib.sh
trap stop_all EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rps() { sed -n 's/^Requests\/sec: *//p'; }
load() { wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s bench/wrk/create.lua "$1/v1/requests" | rps; }

ECHO=$(start echo "echo listening on" "$ECHO_BIN")
A=$(start old "signoff listening on" "$OLD" serve --listen 127.0.0.1:0 --database "$TMP/old.db" --durability full)
B=$(start new "signoff listening on" "$NEW" serve --listen 127.0.0.1:0 --database "$TMP/new.db" --durability full)
APID=$(cat "$TMP/old.pid"); BPID=$(cat "$TMP/new.pid")
SECONDS_RUN="${DURATION%s}"; HZ=$(getconf CLK_TCK)
for _ in $(seq "$ROUNDS"); do
  e=$(load "$ECHO")
  a0=$(cpu_ticks "$APID"); a=$(load "$A"); a1=$(cpu_ticks "$APID")
  b0=$(cpu_ticks "$BPID"); b=$(load "$B"); b1=$(cpu_ticks "$BPID")
  awk -v e="$e" -v a="$a" -v b="$b" -v ca=$((a1 - a0)) -v cb=$((b1 - b0)) -v s="$SECONDS_RUN" -v hz="$HZ" 'BEGIN {
    printf "echo %.0f/s   old %.0f/s (%.3f, %.1f µs/create)   new %.0f/s (%.3f, %.1f µs/create)\n",
      e, a, a / e, ca * 1e6 / hz / (a * s), b, b / e, cb * 1e6 / hz / (b * s) }'
done
