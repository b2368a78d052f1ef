"""The guard command: thin sub-commands over the engine, the proxy, the audit store and the console."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from guard import __version__
from guard import pac as pac_command
from guard.audit import commands as audit_commands
from guard.audit.logging import LOG_FORMATS
from guard.envconfig import ConfigError, env_options, env_port, env_str
from guard.policy import DEFAULT_POLICY, PolicyError, bundled_policies, load_policy, resolve_policy_path
from guard.review import commands as review_commands

if TYPE_CHECKING:
    from guard.engine import Engine

EXIT_OK, EXIT_INPUT, EXIT_CONFIG = 0, 1, 2


def _one_blas_thread() -> None:
    """Load numpy's OpenBLAS with one thread (unless the operator says otherwise).

    guard runs BLAS on one thread anyway (``recognizers.name_net.one_blas_thread``), but OpenBLAS
    starts its pool when numpy loads, and until the limit is set that pool spins beside the engine's
    build and first prompts: a proxy got ready with 4.0-4.3 CPU seconds instead of 4.3-4.5.
    Set here, before any command imports numpy; the inspection workers' fork server inherits it.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


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
    from guard.authoring.explain import outcome_lines

    points = list(verdict.guideline_points)
    out.write(outcome_lines(verdict.decision.value, text, verdict.redacted_text, points))


# ---------------------------------------------------------------- explain

def cmd_explain(args: argparse.Namespace) -> int:
    from guard.authoring import explain_report, render_explain

    engine = _engine(args)
    if args.image is not None:
        return _explain_image(engine, args)
    text = args.text if args.text is not None else sys.stdin.read()
    if args.json:
        sys.stdout.write(json.dumps(explain_report(engine, text, args.destination), ensure_ascii=False,
                                    indent=2) + "\n")
    else:
        render_explain(engine, text, args.destination, sys.stdout)
    return EXIT_OK


def _explain_image(engine: Engine, args: argparse.Namespace) -> int:
    """What OCR read in an image, the explanation of that text, and optionally the masked image."""
    from guard.authoring import explain_report, render_explain
    from guard.images import ImageUnreadable, mask, read_text
    from guard.verdict import Decision

    data = Path(args.image).read_bytes()
    try:
        ocr = read_text(data, timeout=args.ocr_timeout)
    except ImageUnreadable as e:
        sys.stderr.write(f"guard explain: {args.image}: {e}\n")
        return EXIT_INPUT
    verdict = engine.inspect(ocr.text, args.destination)
    replaced = [(f.start, f.end) for f in verdict.findings
                if engine.policy.rule_for(f.entity_type, verdict.tier).action in ("redact", "block")]
    # What the proxy does with the image: the verdict's block (a marking), or the policy's images rule.
    if verdict.decision is Decision.BLOCK or (replaced and engine.policy.images.personal_data == "block"):
        outcome = "blocked"
    else:
        outcome = "masked" if replaced else "unchanged"
    if args.masked_out and outcome != "blocked":
        Path(args.masked_out).write_bytes(mask(data, ocr, replaced) if replaced else data)
    if args.json:
        report = explain_report(engine, ocr.text, args.destination)
        report["image"] = {"file": args.image, "width": ocr.width, "height": ocr.height,
                           "format": ocr.image_format, "masked_spans": replaced, "outcome": outcome,
                           "personal_data_rule": engine.policy.images.personal_data}
        sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
        return EXIT_OK
    sys.stdout.write(f"image {args.image}: {ocr.image_format} {ocr.width}x{ocr.height}\n")
    sys.stdout.write("OCR text:\n" + "".join(f"  | {line}\n" for line in ocr.text.splitlines()) + "\n")
    render_explain(engine, ocr.text, args.destination, sys.stdout)
    rule = engine.policy.images.personal_data
    sys.stdout.write(f"image: {outcome} (policy images.personal_data: {rule})\n")
    if args.masked_out and outcome == "blocked":
        sys.stdout.write(f"masked image not written: the policy blocks this image ({args.masked_out})\n")
    elif args.masked_out:
        sys.stdout.write(f"masked image ({len(replaced)} value(s) blacked out): {args.masked_out}\n")
    return EXIT_OK


# ---------------------------------------------------------------- policy

def cmd_policy_validate(args: argparse.Namespace) -> int:
    """Every check the proxy runs, on every file; all problems of all files are reported."""
    status = EXIT_OK
    for path in args.files:
        try:
            policy = load_policy(path)
        except PolicyError as e:
            print_policy_error(e)
            status = EXIT_CONFIG
            continue
        print(f"{path}: ok — {policy.name} {policy.version}, {len(policy.services)} services, "
              f"{len(policy.recognizers)} declared recognizers, {len(policy.examples)} examples")
        for recognizer in policy.recognizers:
            if policy.display_name(recognizer.supported_entity) is None:
                print(f"{path}: note: {recognizer.supported_entity} has no display_name; notices will call "
                      "it 其他敏感資料 (add display_names: {" + recognizer.supported_entity + ": 中文名稱})")
    return status


def print_policy_error(error: PolicyError) -> None:
    """One line per problem, each with its file and line, so an editor or CI can jump to it."""
    for problem in error.problems:
        print(f"guard: policy error: {problem}", file=sys.stderr)


def cmd_policy_test(args: argparse.Namespace) -> int:
    """Exit 0 when every example of every file passes, 1 when one fails, 2 when a file is unusable."""
    from guard.authoring import FileResult, render_results, run_examples
    from guard.engine import Engine
    from guard.policy import example_lines

    status = EXIT_OK
    for path in args.files:
        try:
            policy = load_policy(path)
        except PolicyError as e:
            print_policy_error(e)
            status = EXIT_CONFIG
            continue
        engine = Engine(policy)
        result = FileResult(str(path), policy, tuple(run_examples(engine, example_lines(path))))
        render_results(result, sys.stdout)
        if result.failed and status == EXIT_OK:
            status = EXIT_INPUT
    return status


def cmd_policy_diff(args: argparse.Namespace) -> int:
    from guard.authoring import CorpusRecord, diff_policies, render_diff, render_diff_json
    from guard.engine import Engine

    if args.examples < 0:
        raise SystemExit("guard policy diff: --examples must be 0 or more")
    old, new = Engine(load_policy(args.old)), Engine(load_policy(args.new))
    records: list[CorpusRecord] = []
    status = EXIT_OK
    with open(args.corpus, encoding="utf-8") as source:
        for number, record, error in _read_jsonl(source):
            if record is None:
                print(f"guard policy diff: {args.corpus}:{number}: {error} (skipped)", file=sys.stderr)
                status = EXIT_INPUT
                continue
            destination = record.get("destination")
            records.append(CorpusRecord(record.get("id", f"line {number}"), record["text"],
                                        destination if isinstance(destination, str) else None))
    report = diff_policies(old, new, records, args.examples)
    (render_diff_json if args.json else render_diff)(report, args.corpus, sys.stdout)
    return status


# ---------------------------------------------------------------- proxy

def proxy_arguments(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> list[str]:
    """Translate ``guard proxy`` flags (and GUARD_* variables, see guard.envconfig) into mitmdump's."""
    argv = ["--listen-host", args.listen_host, "--listen-port", str(args.listen_port),
            "--set", "flow_detail=0", "--set", "connection_strategy=lazy"]
    if args.confdir:
        argv += ["--set", f"confdir={args.confdir}"]
    if args.policy:
        load_policy(args.policy)  # a bad policy stops here, with its file and line, before anything starts
        argv += ["--set", f"guard_policy={resolve_policy_path(args.policy).resolve()}"]
    if args.audit_db:
        argv += ["--set", f"guard_audit_db={args.audit_db}"]
    if args.audit_key_file:
        argv += ["--set", f"guard_audit_key_file={args.audit_key_file}"]
    if args.ops_listen:
        argv += ["--set", f"guard_ops_listen={args.ops_listen}"]
    flags = [item.partition("=")[0].strip() for item in args.set or []]
    for option, value in env_options(environ):
        if option not in flags:  # a flag wins over the environment, also for list options
            argv += ["--set", f"{option}={value}"]
    for item in args.set or []:
        argv += ["--set", item]
    return argv


SECRET_OPTIONS = ("proxyauth", "upstream_auth")


def printable_arguments(argv: Sequence[str]) -> list[str]:
    """mitmdump's command line as it may be shown: passwords in the audit URL and credentials hidden."""
    from guard.audit.store import safe_url

    shown = []
    for item in argv:
        name, sep, value = item.partition("=")
        if sep and name == "guard_audit_db":
            item = f"{name}={safe_url(value)}"
        elif sep and name in SECRET_OPTIONS:
            item = f"{name}=***"
        shown.append(item)
    return shown


def cmd_proxy(args: argparse.Namespace) -> int:
    argv = proxy_arguments(args)
    if args.print_options:  # what this environment and these flags amount to; nothing is started
        print(" ".join(printable_arguments(argv)))
        return EXIT_OK
    from guard.fork_server import start_fork_server

    # First, before the heavy imports below: the inspection workers' engine is built meanwhile.
    start_fork_server(str(resolve_policy_path(args.policy).resolve()) if args.policy else None)

    import asyncio

    from mitmproxy import exceptions
    from mitmproxy.tools import cmdline
    from mitmproxy.tools.dump import DumpMaster
    from mitmproxy.tools.main import run

    from guard.addon import Drain, Guard
    from guard.audit.logging import configure_logging

    class GuardMaster(DumpMaster):
        """mitmdump with the guard built in: an addon error stops start-up instead of being skipped,
        and SIGTERM (or Ctrl-C) drains: not ready, stop listening, finish what is in flight, exit 0.
        A second signal exits at once."""

        def __init__(self, options: object) -> None:
            # No TermLog: configure_logging routes mitmproxy's log through guard's one format.
            super().__init__(options, with_termlog=False)  # type: ignore[arg-type]
            self.guard, self.drain = Guard(), Drain()
            self.addons.add(self.guard, self.drain)
            self._serving = False
            self._draining: asyncio.Task[None] | None = None

        async def run(self) -> None:
            # mitmproxy keeps an option nobody declared for a script that may declare it later, and
            # so would ignore a misspelt one for good; every addon is loaded by now, so refuse it.
            unknown = ", ".join(sorted(self.options.deferred))
            if unknown:
                print(f"guard proxy: unknown option: {unknown}", file=sys.stderr)
                sys.exit(EXIT_CONFIG)
            # mitmproxy configures an addon only for the options set on the command line. Without
            # this a bare `guard proxy` would never load the bundled policy nor read GUARD_AUDIT_KEY,
            # and, knowing no AI host, would pass everything through uninspected.
            try:
                for addon in (self.guard, self.drain):
                    addon.configure(set(self.options.keys()))
                # The audit writer and the inspection workers start before the proxy listens: a client
                # that connects during start-up is refused (and retries) instead of being held.
                self.guard.running()
            except exceptions.OptionsError as e:
                print(f"guard proxy: {e}", file=sys.stderr)
                sys.exit(EXIT_CONFIG)
            await super().run()

        async def running(self) -> None:
            await super().running()
            self._serving = True

        def shutdown(self) -> None:  # mitmproxy's SIGTERM and SIGINT handlers call this
            self.event_loop.call_soon_threadsafe(self._begin_drain)

        def _begin_drain(self) -> None:
            if not self._serving or self._draining is not None:
                super().shutdown()
                return
            self.guard.draining()
            self._draining = asyncio.ensure_future(self._drain())

        async def _drain(self) -> None:
            proxyserver = self.addons.get("proxyserver")
            if proxyserver is not None:
                await proxyserver.servers.update([])  # stop listening; connections already open go on
            await self.drain.wait()
            super().shutdown()

    configure_logging(LOG_LEVELS[args.log_level], args.log_format)
    run(GuardMaster, cmdline.mitmdump, argv)
    return EXIT_OK


# ---------------------------------------------------------------- bench

def cmd_bench(args: argparse.Namespace) -> int:
    from guard.bench import run_bench

    return run_bench(args)


# ---------------------------------------------------------------- wiring

LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
              "error": logging.ERROR}
POLICY_HELP = ("policy YAML file, or a bundled policy by name (" + ", ".join(bundled_policies())
               + "); default: default")
DESCRIPTION = ("An outbound proxy that keeps personal data and classified material out of generative-AI "
               "services, and the tools around it. Run 'guard COMMAND --help' for a command's options.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guard", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"guard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_policy(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--policy", help=POLICY_HELP)
        p.add_argument("--destination", help="destination host[:port]; decides the tier (default: external)")
        return p

    scan = with_policy(sub.add_parser("scan", help="scan prompts: JSON lines in, verdict lines out"))
    scan.add_argument("--jsonl", nargs="?", const="-", metavar="FILE",
                      help="JSON lines {id, text} from FILE or - (stdin); without it, plain text on stdin")
    scan.set_defaults(func=cmd_scan)

    explain = with_policy(sub.add_parser("explain", help="show every candidate, its score, context and rule"))
    explain.add_argument("text", nargs="?", help="the text (default: stdin)")
    explain.add_argument("--json", action="store_true", help="one JSON document instead of text")
    explain.add_argument("--image", metavar="FILE",
                         help="an image (PNG, JPEG, WebP, GIF): explain the text OCR reads in it")
    explain.add_argument("--masked-out", metavar="FILE",
                         help="with --image: write the image as it would be forwarded")
    explain.add_argument("--ocr-timeout", type=float, default=60.0, help="with --image: OCR time limit (s)")
    explain.set_defaults(func=cmd_explain)

    policy = sub.add_parser("policy", help="policy authors' tools: validate, test, diff").add_subparsers(
        dest="policy_command", required=True, metavar="COMMAND")
    validate = policy.add_parser(
        "validate", help="run every check the proxy runs on policy files (exit 0 all good, 2 a problem)")
    validate.add_argument("files", nargs="+", metavar="FILE", help="policy files or bundled policy names")
    validate.set_defaults(func=cmd_policy_validate)
    policy_test = policy.add_parser(
        "test", help="run each policy's examples like unit tests (exit 0 pass, 1 a failure, 2 a bad file)")
    policy_test.add_argument("files", nargs="*", default=[str(DEFAULT_POLICY)], metavar="FILE",
                             help="policy files or bundled policy names (default: default)")
    policy_test.set_defaults(func=cmd_policy_test)
    policy_diff = policy.add_parser("diff", help="what changing policy OLD to NEW would do to a corpus")
    policy_diff.add_argument("old", metavar="OLD", help="the policy in force (a file or a bundled name)")
    policy_diff.add_argument("new", metavar="NEW", help="the policy proposed (a file or a bundled name)")
    policy_diff.add_argument("--corpus", required=True, metavar="FILE.jsonl",
                             help='JSON lines {"id", "text"} with an optional "destination"')
    policy_diff.add_argument("--examples", type=int, default=3, metavar="N",
                             help="masked examples shown per change (default 3)")
    policy_diff.add_argument("--json", action="store_true", help="one JSON document instead of text")
    policy_diff.set_defaults(func=cmd_policy_diff)

    proxy = sub.add_parser("proxy", help="run the guard proxy (mitmproxy with the guard addon)",
                           description="Every flag has an environment variable (named after it); other "
                           "options: GUARD_OPT_<NAME> for guard_<name>, GUARD_MITMPROXY_<NAME> for "
                           "mitmproxy's own. A flag wins over the environment.")
    proxy.add_argument("--listen-host", default=env_str("GUARD_LISTEN_HOST", "127.0.0.1"),
                       help="address to listen on (default 127.0.0.1; GUARD_LISTEN_HOST)")
    proxy.add_argument("--listen-port", type=int, default=env_port("GUARD_LISTEN_PORT", 8080),
                       help="port to listen on (default 8080; GUARD_LISTEN_PORT)")
    proxy.add_argument("--policy", default=env_str("GUARD_POLICY"), help=POLICY_HELP + " (GUARD_POLICY)")
    proxy.add_argument("--confdir", default=env_str("GUARD_CONFDIR"),
                       help="mitmproxy confdir; the CA to trust is DIR/mitmproxy-ca-cert.pem (GUARD_CONFDIR)")
    proxy.add_argument("--audit-db", default=env_str("GUARD_AUDIT_DB"),
                       help="sqlite:///PATH (default: ./guard-audit.db) or postgresql://... (GUARD_AUDIT_DB)")
    proxy.add_argument("--audit-key-file", default=env_str("GUARD_AUDIT_KEY_FILE"),
                       help="audit key file (default: the GUARD_AUDIT_KEY variable; GUARD_AUDIT_KEY_FILE)")
    proxy.add_argument("--ops-listen", metavar="HOST:PORT", default=env_str("GUARD_OPS_LISTEN"),
                       help="serve /metrics, /healthz and /readyz on HOST:PORT "
                       "(default: off; GUARD_OPS_LISTEN)")
    proxy.add_argument("--set", action="append", metavar="NAME=VALUE",
                       help="any mitmproxy or guard option, e.g. --set guard_workers=4")
    proxy.add_argument("--log-format", choices=LOG_FORMATS, default=env_str("GUARD_LOG_FORMAT", "auto"),
                       help="stdout: auto (JSON lines unless stdout is a terminal), json, ecs (JSON with "
                       "Elastic Common Schema field names) or console (GUARD_LOG_FORMAT)")
    proxy.add_argument("--log-level", choices=tuple(LOG_LEVELS), default=env_str("GUARD_LOG_LEVEL", "info"),
                       help="the least severe level written (default info; GUARD_LOG_LEVEL)")
    proxy.add_argument("--print-options", action="store_true",
                       help="print the options the flags and GUARD_* variables amount to (passwords "
                       "hidden), then exit without starting")
    proxy.set_defaults(func=cmd_proxy)

    bench = sub.add_parser("bench", help="throughput, latency, memory: guard vs stock Presidio, side by side")
    bench.add_argument("--corpus", help="JSON lines with a text field (default: the bundled synthetic "
                       "corpus, guard/data/sample_corpus.jsonl)")
    bench.add_argument("--policy", help=POLICY_HELP)
    bench.add_argument("--repeat", type=int, default=200, help="timed runs per prompt size (default 200)")
    bench.add_argument("--side", choices=("guard", "presidio"), help=argparse.SUPPRESS)
    bench.set_defaults(func=cmd_bench)

    audit_commands.register(sub)
    pac_command.register(sub)
    review_commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _one_blas_thread()
    _quiet_libraries()
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(args.func(args))
    except ConfigError as e:
        print(f"guard: environment: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except PolicyError as e:
        print_policy_error(e)
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

