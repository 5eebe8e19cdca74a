#!/usr/bin/env bash
# How long the server's fsyncs take during creates, by thread and file:
# starts a fresh server, runs wrk for 10 s and `perf trace`s fdatasync and
# fsync for 6 s of it. A call that `perf trace` prints in two parts
# (`[continued]`) shows without its file, under "fd ?".
#
#   bench/syncs.sh [SIGNOFF_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-target/release/signoff}"
command -v perf >/dev/null || { echo "perf is needed: apt-get install -y linux-perf" >&2; exit 1; }
TMP="$(mktemp -d)"
. bench/lib.sh
trap stop_all EXIT
URL=$(start server "signoff listening on" "$BIN" serve --listen 127.0.0.1:0 \
  --database "$TMP/bench.db")/v1/requests
PID=$(cat "$TMP/server.pid")
wrk -t2 -c64 -d3s -s bench/wrk/create.lua "$URL" >/dev/null
wrk -t2 -c64 -d10s --latency -s bench/wrk/create.lua "$URL" >"$TMP/wrk.txt" &
WRK=$!
sleep 1
timeout 6 perf trace -e fdatasync,fsync -p "$PID" 2>&1 | grep -E "fdatasync|fsync" >"$TMP/trace.txt" || true
wait "$WRK"
echo "$(sed -n 's/^Requests\/sec: *//p' "$TMP/wrk.txt") creates/s, p99 $(awk '$1 == "99%" {print $2}' "$TMP/wrk.txt")"
ls -l /proc/"$PID"/fd 2>/dev/null | awk '$NF ~ /^\// {print "  fd " $(NF-2) " is " $NF}' | grep -E "\.db" || true
python3 - "$TMP/trace.txt" <<'PY'
import re
import sys

calls = {}
for line in open(sys.argv[1]):
    whole = re.search(r"\(\s*([\d.]+) ms\): (\S+) (?:fdatasync|fsync)\(fd: (\d+)", line)
    split = re.search(r"\(\s*([\d.]+) ms\): (\S+)\s+\.\.\. \[continued\]: (?:fdatasync|fsync)", line)
    if whole:
        calls.setdefault((whole.group(2), whole.group(3)), []).append(float(whole.group(1)))
    elif split:
        calls.setdefault((split.group(2), "?"), []).append(float(split.group(1)))
for (thread, fd), ms in sorted(calls.items()):
    ms.sort()
    n = len(ms)
    print(f"  {thread} fd {fd}: {n} syncs, mean {sum(ms) / n:.3f} ms, p50 {ms[n // 2]:.3f}, "
          f"p99 {ms[int(n * 0.99)]:.3f}, max {ms[-1]:.3f}, {sum(ms):.0f} ms in all")
PY
