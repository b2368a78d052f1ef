#!/bin/sh
# Container entrypoint: run a guard command; its configuration comes from GUARD_* variables.
#
#   (no arguments) or -flags...     guard proxy [flags]
#   proxy | review | audit | users | pac | policy | scan | explain | bench ...
#                                   guard <command> ...
#   anything else                   run it as given (e.g. sh, to look around)
#
# guard reads GUARD_LISTEN_HOST, GUARD_AUDIT_DB, GUARD_OPT_<NAME> ... itself (guard/envconfig.py),
# so nothing secret is put on a command line, where `ps` and `docker inspect` would show it.
# The one mapping done here: PGPASSWORD_FILE (a mounted secret) -> PGPASSWORD, which PostgreSQL's
# client library reads, so the audit store URL needs no password in it.
# GUARD_ENTRYPOINT_PRINT=1 prints the command instead of running it (tests, debugging).
set -eu

if [ -n "${PGPASSWORD_FILE:-}" ]; then
    if [ ! -r "$PGPASSWORD_FILE" ]; then
        echo "entrypoint: PGPASSWORD_FILE=$PGPASSWORD_FILE cannot be read" >&2
        exit 2
    fi
    PGPASSWORD=$(cat "$PGPASSWORD_FILE")
    export PGPASSWORD
fi

if [ $# -eq 0 ]; then
    set -- guard proxy
else
    case "$1" in
        -*) set -- guard proxy "$@" ;;
        proxy|review|audit|users|pac|policy|scan|explain|bench) set -- guard "$@" ;;
    esac
fi

if [ "${GUARD_ENTRYPOINT_PRINT:-}" = 1 ]; then
    printf '%s\n' "$*"
    exit 0
fi
exec "$@"
