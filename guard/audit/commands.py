"""``guard audit list|verify|checkpoint|purge|keygen`` and ``guard users list|add|disable|reset``.

Exit codes of ``guard audit verify``: 0 intact, 1 tampering found (each problem named on stderr),
2 a usage or configuration error, 3 cannot verify (the store is keyed and no audit key is loaded).
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from datetime import UTC, datetime, timedelta

from guard.audit import checkpoints
from guard.audit.accounts import ROLES, AccountError, add_user, list_users, reset_password, set_disabled
from guard.audit.keys import AuditKeyError, load_keys, new_key
from guard.audit.store import DEFAULT_URL, AuditStore, AuditStoreError, EventQuery
from guard.envconfig import env_str

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANNOT_VERIFY = 0, 1, 2, 3
DECISIONS = ("allow", "warn", "redact", "block", "error", "review")
_RELATIVE = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _store(args: argparse.Namespace) -> AuditStore:
    keys = load_keys(getattr(args, "audit_key_file", None))
    return AuditStore.open(args.audit_db, keys)


def moment(value: str | None, option: str = "--since", now: datetime | None = None) -> datetime | None:
    """``24h``/``30m``/``7d``/``2w`` before now, or an ISO date or time (UTC unless it says otherwise)."""
    if not value:
        return None
    relative = _RELATIVE.fullmatch(value.strip())
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise SystemExit(f"guard audit: {option} {value!r} is neither a time ago (24h, 30m, 7d, 2w) "
                         "nor an ISO date or time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def cmd_list(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise SystemExit("guard audit: --limit must be at least 1")
    store = _store(args)
    query = EventQuery(since=moment(args.since), until=moment(args.until, "--until"),
                       decision=args.decision or "", user=args.user, service=args.service or "",
                       limit=args.limit)
    out = sys.stdout
    for record in store.events(query=query):
        if args.jsonl:
            out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        else:
            entities = ", ".join(f"{k}×{v}" for k, v in sorted((record.get("entities") or {}).items()))
            user = record.get("user") or "(unidentified)"
            out.write(f"{record['time']}  {record['event_id']}  {record['kind']:<17} {record['decision']:<6} "
                      f"{user!s:<12} {record.get('service', '')!s:<14} {entities}\n")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        read = checkpoints.read(args.checkpoints) if args.checkpoints else []
    except OSError as e:
        print(f"guard audit verify: cannot read {args.checkpoints}: {e.strerror}", file=sys.stderr)
        return EXIT_USAGE
    report = _store(args).verify(read)
    if report.cannot_verify:
        print(f"audit chain NOT VERIFIED: {report.cannot_verify}", file=sys.stderr)
        return EXIT_CANNOT_VERIFY
    mode = ("keyed (HMAC under the audit key)" if report.mode == "keyed" else
            "keyless (plain SHA-256, chosen at creation: anyone who can write to the database could "
            "rebuild it)" if report.mode == "keyless" else "empty")
    if report.intact:
        against = f"; {report.checkpoints} checkpoint(s) agree" if args.checkpoints else ""
        print(f"audit chain intact: {report.checked} events, {mode}{against}")
        return EXIT_OK
    print(f"audit chain BROKEN: {len(report.problems)} problem(s) in {report.checked} events, {mode}",
          file=sys.stderr)
    for problem in report.problems:
        print(f"  {problem}", file=sys.stderr)
    return EXIT_FAILED


def cmd_checkpoint(args: argparse.Namespace) -> int:
    store = _store(args)
    head = store.head()
    checkpoint = checkpoints.take(head.seq, head.length, head.hash, store.keys)
    checkpoints.CheckpointLog(args.checkpoints).write(checkpoint)
    print(f"checkpoint written to {args.checkpoints}: {head.length} events, event #{head.seq}")
    return EXIT_OK


def cmd_purge(args: argparse.Namespace) -> int:
    purged = _store(args).purge()
    print(f"purged evidence of {purged} event(s) past retention")
    return EXIT_OK


def cmd_keygen(_args: argparse.Namespace) -> int:
    print(new_key())
    return EXIT_OK


def _actor() -> str:
    try:
        return f"guard users ({getpass.getuser()})"
    except (KeyError, OSError):
        return "guard users"


def _password(args: argparse.Namespace) -> str:
    """From standard input with --password-stdin; else asked twice on the terminal, never echoed."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise AccountError("no terminal to ask for the password: pass it on standard input with "
                           "--password-stdin")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise AccountError("the two passwords differ")
    return first


def cmd_users_add(args: argparse.Namespace) -> int:
    add_user(_store(args), args.name, args.role, _password(args), replace=args.replace, actor=_actor())
    print(f"user {args.name.strip()} ({args.role}) saved")
    return EXIT_OK


def cmd_users_list(args: argparse.Namespace) -> int:
    for account in list_users(_store(args)):
        state = "disabled" if account.disabled else "enabled"
        print(f"{account.name:<24} {account.role:<9} {state:<9} since {account.created_at:%Y-%m-%d}")
    return EXIT_OK


def cmd_users_disable(args: argparse.Namespace) -> int:
    disabled = args.users_command == "disable"
    if not set_disabled(_store(args), args.name, disabled, actor=_actor()):
        raise AccountError(f"no user {args.name}")
    print(f"user {args.name} {'disabled (sessions ended)' if disabled else 'enabled'}")
    return EXIT_OK


def cmd_users_reset(args: argparse.Namespace) -> int:
    reset_password(_store(args), args.name, _password(args), actor=_actor())
    print(f"password of {args.name} reset (sessions ended)")
    return EXIT_OK


def _with_store(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--audit-db", default=env_str("GUARD_AUDIT_DB", DEFAULT_URL),
                   help=f"sqlite:///PATH or postgresql://... (default: GUARD_AUDIT_DB, else {DEFAULT_URL})")
    p.add_argument("--audit-key-file", default=env_str("GUARD_AUDIT_KEY_FILE"),
                   help="audit key file (default: GUARD_AUDIT_KEY_FILE, else the GUARD_AUDIT_KEY variable)")
    return p


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser("audit", help="the audit trail: list, verify, checkpoint, purge").add_subparsers(
        dest="audit_command", required=True)
    listing = _with_store(audit.add_parser("list", help="events, oldest first (newest last)"))
    listing.add_argument("--since", help="only events at or after this: 24h, 30m, 7d, 2w ago, or an ISO time")
    listing.add_argument("--until", help="only events before this: a time ago or an ISO time")
    listing.add_argument("--decision", choices=DECISIONS,
                         help="only this decision (review: reviewers' actions)")
    listing.add_argument("--user", help="only this user's events")
    listing.add_argument("--service", help="only this service's events")
    listing.add_argument("--limit", type=int, help="only the newest N matching events")
    listing.add_argument("--jsonl", action="store_true", help="one JSON line per event")
    listing.set_defaults(func=cmd_list)
    verify = _with_store(audit.add_parser(
        "verify", help="check the chain and the rows relying on it",
        description="Exit 0: intact. 1: tampering found. 2: usage or configuration error. "
                    "3: cannot verify (keyed store, no audit key loaded)."))
    verify.add_argument("--checkpoints", metavar="FILE",
                        help="checkpoint file (or a SIEM export of guard's JSON log) "
                             "to check the store against")
    verify.set_defaults(func=cmd_verify)
    checkpoint = _with_store(audit.add_parser(
        "checkpoint", help="append a signed checkpoint of the head to FILE"))
    checkpoint.add_argument("--checkpoints", metavar="FILE", required=True,
                            help="the checkpoint file to append to (keep it outside the database's disk)")
    checkpoint.set_defaults(func=cmd_checkpoint)
    purge = _with_store(audit.add_parser("purge", help="delete evidence past its retention period"))
    purge.set_defaults(func=cmd_purge)
    keygen = audit.add_parser("keygen", help="print a new audit key (base64) for a key file")
    keygen.set_defaults(func=cmd_keygen)

    users = sub.add_parser("users", help="review console accounts").add_subparsers(
        dest="users_command", required=True)
    listed = _with_store(users.add_parser("list", help="every account, its role and state"))
    listed.set_defaults(func=cmd_users_list)
    add = _with_store(users.add_parser("add", help="add a console user (the password is asked for)"))
    add.add_argument("name", help="the user's login name")
    add.add_argument("--role", required=True, choices=ROLES,
                     help="reviewer (events, evidence), author (false positives, suggestions) or admin")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.add_argument("--replace", action="store_true", help="replace an existing user's password and role")
    add.set_defaults(func=cmd_users_add)
    for name, what in (("disable", "disable an account and end its sessions"),
                       ("enable", "enable an account")):
        toggle = _with_store(users.add_parser(name, help=what))
        toggle.add_argument("name", help="the user's login name")
        toggle.set_defaults(func=cmd_users_disable)
    reset = _with_store(users.add_parser("reset", help="set a new password (asked for) and end the sessions"))
    reset.add_argument("name", help="the user's login name")
    reset.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    reset.set_defaults(func=cmd_users_reset)


ERRORS = (AuditStoreError, AuditKeyError, AccountError)
