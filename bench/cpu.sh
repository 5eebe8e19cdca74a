#!/usr/bin/env bash
# Server CPU time per request: runs wrk against URL for 10 s and reads the
# server's user+system time from /proc before and after.
#   bench/cpu.sh SERVER_PID URL [LUA_SCRIPT]
set -euo pipefail
pid="$1" url="$2" script="${3:-bench/wrk/create.lua}"
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks)
out=$(wrk -t2 -c64 -d10s -s "$script" "$url")
t1=$(ticks)
total=$(echo "$out" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
echo "$(echo "$out" | sed -n 's/^Requests\/sec: *//p') req/s, server CPU $(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$total" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}') µs per request"
