#!/usr/bin/env bash
# Instructions the server executes per create, counted by valgrind's
# callgrind rather than timed: repeatable on a noisy machine, so two
# binaries can be compared by small differences. Runs the server under
# callgrind twice, sending N and then 2N creates (64 connections, the seed
# program), and prints the difference divided by N, so that start-up and
# shutdown cancel out.
#
#   bench/callgrind.sh [SIGNOFF_BINARY] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-target/release/signoff}"; N="${2:-4000}"
SEED="${SEED_BIN:-target/release/seed}"
command -v valgrind >/dev/null || { echo "valgrind is needed: apt-get install -y valgrind" >&2; exit 1; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

instructions() { # creates
  local dir="$TMP/$1"; mkdir -p "$dir"
  valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
    "$BIN" serve --listen 127.0.0.1:0 --database "$dir/bench.db" --durability full \
    >"$dir/out" 2>"$dir/err" &
  local pid=$!
  for _ in $(seq 600); do
    grep -q "listening on" "$dir/out" 2>/dev/null && break
    sleep 0.2
  done
  "$SEED" "$(sed -n 's/.*listening on //p' "$dir/out")" "$pid" "$1" 64 >/dev/null
  kill -INT "$pid"; wait "$pid" || true
  sed -n 's/.*I *refs: *//p' "$dir/err" | tr -d ,
}

small=$(instructions "$N"); large=$(instructions $((2 * N)))
echo "$BIN: $small instructions for $N creates, $large for $((2 * N)): $(( (large - small) / N )) per create"
