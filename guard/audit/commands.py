"""``guard audit list|verify|purge|keygen`` and ``guard users add``: thin commands over the store."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from guard.audit.accounts import ROLES, AccountError, add_user
from guard.audit.keys import AuditKeyError, load_keys, new_key
from guard.audit.store import DEFAULT_URL, AuditStore, AuditStoreError
from guard.envconfig import env_str

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _store(args: argparse.Namespace) -> AuditStore:
    keys = load_keys(getattr(args, "audit_key_file", None))
    return AuditStore.open(args.audit_db, keys)


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        since = datetime.fromisoformat(value)
    except ValueError:
        raise SystemExit(f"guard audit: --since {value!r} is not an ISO date or time") from None
    return since if since.tzinfo else since.replace(tzinfo=UTC)


def cmd_list(args: argparse.Namespace) -> int:
    store = _store(args)
    out = sys.stdout
    for record in store.events(_since(args.since)):
        if args.jsonl:
            out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        else:
            entities = ", ".join(f"{k}×{v}" for k, v in sorted((record.get("entities") or {}).items()))
            out.write(f"{record['time']}  {record['event_id']}  {record['kind']:<17} "
                      f"{record.get('user', '')!s:<12} {record.get('service', '')!s:<14} {entities}\n")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    report = _store(args).verify()
    if report.intact:
        print(f"audit chain intact: {report.checked} events")
        return EXIT_OK
    print(f"audit chain BROKEN: {len(report.problems)} problem(s) in {report.checked} events",
          file=sys.stderr)
    for problem in report.problems:
        print(f"  {problem}", file=sys.stderr)
    return EXIT_FAILED


def cmd_purge(args: argparse.Namespace) -> int:
    purged = _store(args).purge()
    print(f"purged evidence of {purged} event(s) past retention")
    return EXIT_OK


def cmd_keygen(_args: argparse.Namespace) -> int:
    print(new_key())
    return EXIT_OK


def cmd_users_add(args: argparse.Namespace) -> int:
    if not args.password_stdin:
        print("guard users add: pass the password on standard input with --password-stdin", file=sys.stderr)
        return EXIT_USAGE
    password = sys.stdin.readline().rstrip("\r\n")
    add_user(_store(args), args.name, args.role, password, replace=args.replace)
    print(f"user {args.name.strip()} ({args.role}) saved")
    return EXIT_OK


def _with_store(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--audit-db", default=env_str("GUARD_AUDIT_DB", DEFAULT_URL),
                   help=f"sqlite:///PATH or postgresql://... (default: GUARD_AUDIT_DB, else {DEFAULT_URL})")
    p.add_argument("--audit-key-file", default=env_str("GUARD_AUDIT_KEY_FILE"),
                   help="audit key file (default: GUARD_AUDIT_KEY_FILE, else the GUARD_AUDIT_KEY variable)")
    return p


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser("audit", help="the audit trail: list, verify, purge").add_subparsers(
        dest="audit_command", required=True)
    listing = _with_store(audit.add_parser("list", help="events, oldest first (newest last)"))
    listing.add_argument("--since", help="only events at or after this ISO time (UTC unless stated)")
    listing.add_argument("--jsonl", action="store_true", help="one JSON line per event")
    listing.set_defaults(func=cmd_list)
    verify = _with_store(audit.add_parser("verify", help="check the hash chain; exit 0 when intact"))
    verify.set_defaults(func=cmd_verify)
    purge = _with_store(audit.add_parser("purge", help="delete evidence past its retention period"))
    purge.set_defaults(func=cmd_purge)
    keygen = audit.add_parser("keygen", help="print a new audit key (base64) for a key file")
    keygen.set_defaults(func=cmd_keygen)

    users = sub.add_parser("users", help="review console accounts").add_subparsers(
        dest="users_command", required=True)
    add = _with_store(users.add_parser("add", help="add a console user"))
    add.add_argument("name", help="the user's login name")
    add.add_argument("--role", required=True, choices=ROLES,
                     help="reviewer (events, evidence), author (false positives, suggestions) or admin")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.add_argument("--replace", action="store_true", help="replace an existing user's password and role")
    add.set_defaults(func=cmd_users_add)


ERRORS = (AuditStoreError, AuditKeyError, AccountError)
