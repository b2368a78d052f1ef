"""The ``guard`` command: thin sub-commands over the engine, the proxy, the audit store and the console."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from guard.audit import commands as audit_commands
from guard.policy import PolicyError, load_policy
from guard.review import commands as review_commands

EXIT_OK, EXIT_INPUT, EXIT_CONFIG = 0, 1, 2


def _quiet_libraries() -> None:
    """Presidio and jieba talk on stderr about things that are not the user's business."""
    for name in ("presidio-analyzer", "presidio-anonymizer", "jieba", "tldextract"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _engine(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from guard.engine import Engine

    return Engine(load_policy(args.policy))


# ---------------------------------------------------------------- scan

def _read_jsonl(stream: IO[str]) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """Yield (line number, record or None, error) for each non-blank line."""
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            yield number, None, f"not JSON ({e.msg} at column {e.colno})"
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            yield number, None, 'expected an object with a string "text"'
            continue
        yield number, record, ""


def cmd_scan(args: argparse.Namespace) -> int:
    engine = _engine(args)
    out = sys.stdout
    if args.jsonl is None:
        text = sys.stdin.read()
        verdict = engine.inspect(text, args.destination)
        _print_human(text, verdict, out)
        return EXIT_OK
    source: IO[str] = sys.stdin if args.jsonl == "-" else open(args.jsonl, encoding="utf-8")  # noqa: SIM115
    status = EXIT_OK
    with source:
        for number, record, error in _read_jsonl(source):
            if record is None:
                # Keep one output line per input line, so nothing is silently lost or shifted.
                print(f"guard scan: {args.jsonl}:{number}: {error}", file=sys.stderr)
                out.write(json.dumps({"id": None, "line": number, "error": error}) + "\n")
                status = EXIT_INPUT
                continue
            verdict = engine.inspect(record["text"], args.destination)
            out.write(json.dumps({
                "id": record.get("id"),
                "decision": verdict.decision.value,
                "findings": [f.to_contract() for f in verdict.findings],
                "redacted_text": verdict.redacted_text,
            }, ensure_ascii=False) + "\n")
    out.flush()
    return status


def _print_human(text: str, verdict: Any, out: IO[str]) -> None:
    out.write(f"decision: {verdict.decision.value}  (policy {verdict.policy_name} {verdict.policy_version},"
              f" tier {verdict.tier})\n")
    for f in verdict.findings:
        value = text[f.start:f.end]
        out.write(f"  {f.entity_type:22} {f.start:>5}-{f.end:<5} score {f.score:.2f}  {value!r}\n")
    if verdict.redacted_text != text:
        out.write("redacted:\n" + verdict.redacted_text + "\n")


# ---------------------------------------------------------------- explain

def cmd_explain(args: argparse.Namespace) -> int:
    engine = _engine(args)
    text = args.text if args.text is not None else sys.stdin.read()
    tier = engine.policy.tier_for_destination(args.destination)
    candidates = engine.candidates(text, tier=tier, explain=True)
    verdict = engine.inspect(text, args.destination)
    out = sys.stdout
    out.write(f"policy {engine.policy.name} {engine.policy.version}  ({engine.policy.source})\n")
    out.write(f"destination tier: {tier}\n")
    if not candidates:
        out.write("no recognizer produced a candidate\n")
    for c in candidates:
        f = c.finding
        out.write(f"\n{f.entity_type}  [{f.start}:{f.end}]  {text[f.start:f.end]!r}\n")
        out.write(f"  recognizer  {f.recognizer}" + (f" / pattern {c.pattern}" if c.pattern else "") + "\n")
        out.write(f"  score       {f.score:.2f}   (rule: {c.rule.action} at >= {c.rule.min_score:.2f})\n")
        if f.context_word:
            out.write(f"  context     {f.context_word!r} raised the score\n")
        if f.classification_level is not None:
            out.write(f"  level       {f.classification_level.name}\n")
        if c.explanation:
            out.write(f"  why         {c.explanation}\n")
        out.write(f"  outcome     {c.outcome}\n")
    out.write(f"\ndecision: {verdict.decision.value}\n")
    if verdict.redacted_text != text:
        out.write(f"redacted: {verdict.redacted_text}\n")
    return EXIT_OK


# ---------------------------------------------------------------- policy

def cmd_policy_validate(args: argparse.Namespace) -> int:
    for path in args.files:
        policy = load_policy(path)
        print(f"{path}: ok — {policy.name} {policy.version}, {len(policy.services)} services, "
              f"{len(policy.recognizers)} declared recognizers")
    return EXIT_OK


# ---------------------------------------------------------------- proxy

def proxy_arguments(args: argparse.Namespace) -> list[str]:
    """Translate ``guard proxy`` flags into mitmdump's command line."""
    argv = ["--listen-host", args.listen_host, "--listen-port", str(args.listen_port),
            "--set", "flow_detail=0", "--set", "connection_strategy=lazy"]
    if args.confdir:
        argv += ["--set", f"confdir={args.confdir}"]
    if args.policy:
        load_policy(args.policy)  # a bad policy stops here, with its file and line, before anything starts
        argv += ["--set", f"guard_policy={Path(args.policy).resolve()}"]
    if args.audit_db:
        argv += ["--set", f"guard_audit_db={args.audit_db}"]
    if args.ops_listen:
        argv += ["--set", f"guard_ops_listen={args.ops_listen}"]
    for item in args.set or []:
        argv += ["--set", item]
    return argv


def cmd_proxy(args: argparse.Namespace) -> int:
    from mitmproxy.tools import cmdline
    from mitmproxy.tools.dump import DumpMaster
    from mitmproxy.tools.main import run

    from guard.addon import Guard
    from guard.audit.logging import configure_logging

    class GuardMaster(DumpMaster):
        """mitmdump with the guard built in: an addon error stops start-up instead of being skipped."""

        def __init__(self, options: object) -> None:
            super().__init__(options)  # type: ignore[arg-type]
            self.addons.add(Guard())

    configure_logging()
    run(GuardMaster, cmdline.mitmdump, proxy_arguments(args))
    return EXIT_OK


# ---------------------------------------------------------------- bench

def cmd_bench(args: argparse.Namespace) -> int:
    from guard.bench import run_bench

    return run_bench(args)


# ---------------------------------------------------------------- wiring

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guard", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def with_policy(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--policy", help="policy YAML (default: the bundled policies/default.yaml)")
        p.add_argument("--destination", help="destination host[:port]; decides the tier (default: external)")
        return p

    scan = with_policy(sub.add_parser("scan", help="scan prompts: JSON lines in, verdict lines out"))
    scan.add_argument("--jsonl", nargs="?", const="-", metavar="FILE",
                      help="JSON lines {id, text} from FILE or - (stdin); without it, plain text on stdin")
    scan.set_defaults(func=cmd_scan)

    explain = with_policy(sub.add_parser("explain", help="show every candidate, its score, context and rule"))
    explain.add_argument("text", nargs="?", help="the text (default: stdin)")
    explain.set_defaults(func=cmd_explain)

    policy = sub.add_parser("policy", help="policy tools").add_subparsers(
        dest="policy_command", required=True)
    validate = policy.add_parser("validate", help="load and validate policy files")
    validate.add_argument("files", nargs="+")
    validate.set_defaults(func=cmd_policy_validate)

    proxy = sub.add_parser("proxy", help="run the guard proxy (mitmproxy with the guard addon)")
    proxy.add_argument("--listen-host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    proxy.add_argument("--listen-port", type=int, default=8080, help="port to listen on (default 8080)")
    proxy.add_argument("--policy", help="policy YAML (default: the bundled policies/default.yaml)")
    proxy.add_argument("--confdir", help="mitmproxy confdir; the CA to trust is DIR/mitmproxy-ca-cert.pem")
    proxy.add_argument("--audit-db", help="sqlite:///PATH (default: ./guard-audit.db) or postgresql://...")
    proxy.add_argument("--ops-listen", metavar="HOST:PORT",
                       help="serve /metrics, /healthz and /readyz on HOST:PORT (default: off)")
    proxy.add_argument("--set", action="append", metavar="NAME=VALUE",
                       help="any mitmproxy or guard option, e.g. --set guard_workers=4")
    proxy.set_defaults(func=cmd_proxy)

    bench = sub.add_parser("bench", help="throughput, latency, memory: guard vs stock Presidio, side by side")
    bench.add_argument("--corpus", help="JSON lines with a text field (default: ../shared/corpus/dev.jsonl)")
    bench.add_argument("--policy")
    bench.add_argument("--repeat", type=int, default=200, help="timed runs per prompt size (default 200)")
    bench.add_argument("--side", choices=("guard", "presidio"), help=argparse.SUPPRESS)
    bench.set_defaults(func=cmd_bench)

    audit_commands.register(sub)
    review_commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_libraries()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except PolicyError as e:
        print(f"guard: policy error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except FileNotFoundError as e:
        print(f"guard: {e.strerror}: {e.filename}", file=sys.stderr)
        return EXIT_INPUT
    except audit_commands.ERRORS as e:
        print(f"guard: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

