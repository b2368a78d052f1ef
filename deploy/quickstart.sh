#!/usr/bin/env bash
# Install guard into .venv and start the proxy: bundled default policy, embedded SQLite audit store.
# Extra arguments go to `guard proxy` (e.g. --listen-port 8080 --policy my.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e .
exec .venv/bin/guard proxy "$@"
