#!/usr/bin/env bash
# Install guard into .venv and start the proxy: bundled default policy, embedded SQLite audit store.
# Every step says what it does, and pip shows its own progress: the first run downloads and builds
# about 150 MB of wheels, which takes a minute or two. Extra arguments go to `guard proxy`
# (e.g. ./deploy/quickstart.sh --listen-port 3128 --policy my.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> [%s] %s\n' "$(date +%T)" "$*"; }

if [ ! -x .venv/bin/python ]; then
  step "Creating the virtual environment .venv ($(python3 --version))"
  python3 -m venv .venv
fi
step "Installing guard and its dependencies into .venv (pip's progress follows)"
.venv/bin/pip install --disable-pip-version-check --progress-bar on -e .

# What the Docker image does at build time: jieba's dictionary cache is written once here, so no
# start of the proxy pays for building it, and a missing dictionary fails now rather than later.
step "Preparing the name dictionary (jieba's cache) and checking every recognizer once"
.venv/bin/guard policy validate default
.venv/bin/guard explain '報案人王小明（身分證A123456789）電話0912345678' > /dev/null

confdir="${GUARD_CONFDIR:-$HOME/.mitmproxy}"
step "Starting the proxy: guard proxy $*"
echo "    Ready when the log says 'inspection workers' (a few seconds). Stop it with Ctrl-C."
echo "    Clients must trust the CA in $confdir/mitmproxy-ca-cert.pem (written on the first start)."
exec .venv/bin/guard proxy "$@"
