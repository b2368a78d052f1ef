"""``guard review``: serve the review console with waitress."""

from __future__ import annotations

import argparse
import sys

from guard.audit.keys import load_keys
from guard.audit.store import DEFAULT_URL, AuditStore, safe_url
from guard.envconfig import env_port, env_str
from guard.review.auth import parse_networks

EXIT_OK = 0


def cmd_review(args: argparse.Namespace) -> int:
    import waitress

    from guard.review.app import create_app

    if args.session_minutes < 1:
        raise SystemExit("guard review: --session-minutes must be at least 1")
    try:
        trusted = parse_networks(args.trusted_proxy or [])
    except ValueError as e:
        raise SystemExit(f"guard review: --trusted-proxy: {e}") from None
    keys = load_keys(args.audit_key_file)
    store = AuditStore.open(args.audit_db, keys)
    app = create_app(store, session_minutes=args.session_minutes, secure_cookies=args.secure_cookies,
                     trusted_proxies=trusted)
    evidence = "evidence can be opened" if keys else "no audit key: evidence cannot be opened"
    print(f"guard review: http://{args.listen_host}:{args.listen_port}/ over {safe_url(args.audit_db)} "
          f"({evidence})", file=sys.stderr, flush=True)
    try:
        waitress.serve(app, host=args.listen_host, port=args.listen_port, threads=args.threads,
                       ident="guard-review",
                       # With trusted proxies the console reads X-Forwarded-* itself, from them only.
                       clear_untrusted_proxy_headers=not trusted)
    finally:
        store.close()
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    review = sub.add_parser("review", help="the review console for the security team (web)")
    review.add_argument("--audit-db", default=env_str("GUARD_AUDIT_DB", DEFAULT_URL),
                        help=f"sqlite:///PATH or postgresql://... (default: {DEFAULT_URL})")
    review.add_argument("--audit-key-file", default=env_str("GUARD_AUDIT_KEY_FILE"),
                        help="audit key file, needed to open evidence (default: GUARD_AUDIT_KEY)")
    review.add_argument("--listen-host", default=env_str("GUARD_REVIEW_LISTEN_HOST", "127.0.0.1"),
                        help="address to listen on (default 127.0.0.1; GUARD_REVIEW_LISTEN_HOST)")
    review.add_argument("--listen-port", type=int, default=env_port("GUARD_REVIEW_LISTEN_PORT", 8081),
                        help="port to listen on (default 8081; GUARD_REVIEW_LISTEN_PORT)")
    review.add_argument("--session-minutes", type=int, default=30,
                        help="sign a user out after this many idle minutes (default 30; 8 hours at most)")
    review.add_argument("--secure-cookies", action="store_true",
                        help="mark cookies Secure (use when served over HTTPS, e.g. behind a TLS proxy)")
    review.add_argument("--trusted-proxy", action="append",
                        default=[v for v in [env_str("GUARD_REVIEW_TRUSTED_PROXIES")] if v],
                        metavar="ADDRESS[/BITS]",
                        help="a TLS proxy in front of the console (repeatable, or comma-separated in "
                             "GUARD_REVIEW_TRUSTED_PROXIES): its X-Forwarded-For names the client and its "
                             "X-Forwarded-Proto: https turns on Secure cookies and HSTS")
    review.add_argument("--threads", type=int, default=4, help=argparse.SUPPRESS)
    review.set_defaults(func=cmd_review)
