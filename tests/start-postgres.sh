#!/usr/bin/env bash
# Start Debian's PostgreSQL cluster (if it is not running) and create the test role `guard`.
set -euo pipefail
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
version=$(ls /usr/lib/postgresql | sort -V | tail -1)
if ! pg_lsclusters -h | grep -q "^$version "; then
  as_root=""; [ "$(id -u)" = 0 ] || as_root="sudo"
  $as_root pg_createcluster "$version" main >/dev/null
fi
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}' | grep -q online; then
  as_root=""; [ "$(id -u)" = 0 ] || as_root="sudo"
  $as_root pg_ctlcluster "$version" main start
fi
for _ in $(seq 1 30); do
  as_postgres pg_isready -q -h 127.0.0.1 && break
  sleep 1
done
as_postgres psql -qtc "SELECT 1 FROM pg_roles WHERE rolname = 'guard'" | grep -q 1 ||
  as_postgres psql -qc "CREATE ROLE guard LOGIN CREATEDB PASSWORD 'guard'"
# DROP DATABASE ... WITH (FORCE) in the tests' teardown terminates whatever still uses the database,
# an autovacuum worker included, which only a member of pg_signal_backend may do.
as_postgres psql -qc "GRANT pg_signal_backend TO guard" >/dev/null
