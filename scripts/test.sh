#!/usr/bin/env bash
# Runs every check Signoff has, from a fresh clone, with nothing set up by hand:
# formatting, lints, and the whole test suite (unit, store suite, HTTP
# integration, CLI, crash, and the schemathesis fuzz of the OpenAPI document).
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

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked
