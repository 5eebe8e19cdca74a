# Shared by the bench scripts (sourced, after `TMP` is set to a scratch
# directory): starting servers in the background and stopping them.
#
# Servers are started inside $(...), a subshell: their pids are kept in
# files, since an array filled there would be empty in the script.

# Starts COMMAND in the background and prints its URL once it prints
# "MARKER URL". Its pid goes to $TMP/NAME.pid, its stderr to
# ${LOGS:-$TMP}/NAME.log. Exits (the subshell, which fails the assignment
# under `set -e`) if it does not listen within 10 s.
start() { # name, marker, command...
  local name="$1" marker="$2"; shift 2
  "$@" >"$TMP/$name.out" 2>"${LOGS:-$TMP}/$name.log" &
  echo $! >"$TMP/$name.pid"
  for _ in $(seq 100); do
    if grep -q "$marker" "$TMP/$name.out" 2>/dev/null; then
      sed -n "s/.*$marker //p" "$TMP/$name.out" | head -1
      return
    fi
    sleep 0.1
  done
  echo "$name did not start" >&2; exit 1
}

# Stops every server `start` started and removes $TMP; for `trap ... EXIT`.
stop_all() {
  for pidfile in "$TMP"/*.pid; do
    [ -e "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
