#!/usr/bin/env bash
# Runs every check Signoff has, from a fresh clone, with nothing set up by hand:
# formatting, lints, and the whole test suite (unit, store suite, HTTP
# integration, CLI, crash, webhooks against a loopback receiver, the web
# inbox in headless Chromium, and the schemathesis fuzz of the OpenAPI document),
# once on SQLite and once more on PostgreSQL, plus the replica tests.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Python tools (schemathesis) in a local virtual environment, from PyPI.
venv="${SIGNOFF_VENV:-$PWD/.venv}"
if ! "$venv/bin/python" -c 'import schemathesis' 2>/dev/null \
    || ! cmp -s tests/python/requirements.txt "$venv/.requirements"; then
  step "setting up $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
  cp tests/python/requirements.txt "$venv/.requirements"
fi
export SIGNOFF_VENV="$venv"
# The tests that need these tools fail instead of skipping when they are missing.
export SIGNOFF_REQUIRE_TOOLS=1

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Chromium for the browser tests of the web inbox: Debian's package
# (Playwright drives it; its own browser download does not work offline).
export SIGNOFF_CHROMIUM="${SIGNOFF_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$SIGNOFF_CHROMIUM" ]; then
  step "installing Chromium from Debian's packages"
  as_root apt-get install -y -q chromium >/dev/null \
    || { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q chromium >/dev/null; }
fi

# PostgreSQL for the PostgreSQL backend and the replica tests: the local
# server, started when it is not running (installed from Debian's packages
# when it is missing).
export SIGNOFF_TEST_POSTGRES="${SIGNOFF_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    step "installing PostgreSQL from Debian's packages"
    as_root apt-get install -y -q postgresql postgresql-client >/dev/null
  fi
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  step "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
fi
if ! psql "$SIGNOFF_TEST_POSTGRES" -qAtc 'SELECT 1' >/dev/null 2>&1; then
  # A fresh Debian cluster asks for passwords over TCP: trust loopback, for tests.
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  step "letting the tests connect over loopback ($hba)"
  as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  sleep 1
fi
# Scratch databases of earlier runs.
psql "$SIGNOFF_TEST_POSTGRES" -qAtc "SELECT datname FROM pg_database WHERE datname LIKE 'signoff_test_%'" \
  | while read -r db; do psql "$SIGNOFF_TEST_POSTGRES" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"; done

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (SQLite; the store suite and the replica tests also on PostgreSQL)"
cargo test --workspace --locked

step "the server tests again, every one on PostgreSQL"
SIGNOFF_TEST_BACKEND=postgres cargo test --locked -p signoff

# Last and alone: it stops and starts the PostgreSQL server under load.
pg_version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)"
if [ -n "$pg_version" ] && command -v pg_ctlcluster >/dev/null; then
  step "stopping and starting PostgreSQL under load"
  pg_ctl_prefix=""
  [ "$(id -u)" = 0 ] || pg_ctl_prefix="sudo "
  SIGNOFF_TEST_PG_CTL="${pg_ctl_prefix}pg_ctlcluster --skip-systemctl-redirect $pg_version main" \
    cargo test --locked -p signoff --test outage -- --ignored
fi
