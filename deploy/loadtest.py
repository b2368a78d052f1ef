"""Load test: simulated staff sending corpus prompts through guard proxies, with think time between them.

Each user is a thread with its own keep-alive HTTPS connections tunnelled through a guard proxy (as a
browser or SDK holds them), sending OpenAI, Anthropic and Gemini requests (some streamed) built from
the corpus records, then thinking for an exponentially distributed time. Every answer is checked:
a record with a classification marking must be blocked (403 from the guard), any other must come back
200 with the stand-in's echo of the *original* prompt (personal data redacted on the way out and
restored on the way back). Users are spread over the proxies given, round robin.

    # against proxies already running (their CA; the AI services they catalogue)
    .venv/bin/python deploy/loadtest.py --proxy http://guard:3128 --ca ca.pem \\
        --openai https://llm.example:443 --users 200 --duration 60
    # or start a stand-in upstream and N guard nodes here, sharing one audit store
    .venv/bin/python deploy/loadtest.py --start-local --nodes 2 --workers 2 \\
        --audit-db postgresql://guard:guard@127.0.0.1/guard_load --users 200 --duration 60

Reports throughput, latency percentiles, errors by kind, answers by status, the guard's decisions and
inspection failures (from each node's /metrics) and, for local nodes, the CPU and memory they used and whether
`guard audit verify` finds one intact chain. ``--json`` prints the report as JSON. Exit status 1 when
any request failed.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import multiprocessing
import os
import random
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_proxy import ProxyProcess, _serve_upstreams, free_port  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from guard.sample_corpus import SAMPLE_CORPUS  # noqa: E402
from tests.e2e.upstream import ECHO_PREFIX, make_self_signed_cert  # noqa: E402

APIS = ("openai", "anthropic", "gemini")
API_WEIGHTS = (0.5, 0.25, 0.25)
REQUEST_TIMEOUT = 60.0


# ---------------------------------------------------------------- prompts and requests

@dataclass(frozen=True)
class Prompt:
    text: str
    expect_block: bool | None  # None: the corpus does not say


def load_prompts(path: Path, per_prompt: int = 1, seed: int = 7) -> list[Prompt]:
    """Corpus records (JSON lines with "text"; "entities" when known), ``per_prompt`` joined into one."""
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not records:
        raise SystemExit(f"loadtest: {path}: no records")
    rng = random.Random(seed)
    prompts = []
    for _ in range(max(len(records), 200)):
        chosen = [rng.choice(records) for _ in range(per_prompt)]
        known = all("entities" in r for r in chosen)
        types = {e.get("type") for r in chosen for e in r.get("entities", [])}
        classified = "CLASSIFICATION_MARKER" in types
        prompts.append(Prompt("\n".join(r["text"] for r in chosen), classified if known else None))
    return prompts


def build_request(api: str, text: str, stream: bool) -> tuple[str, bytes, dict[str, str]]:
    """(path, body, headers) of one chat request in the service's own shape."""
    headers = {"content-type": "application/json"}
    if api == "openai":
        doc: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
        path, headers["authorization"] = "/v1/chat/completions", "Bearer sk-loadtest"
    elif api == "anthropic":
        doc = {"model": "claude-sonnet-4", "max_tokens": 1024,
               "messages": [{"role": "user", "content": text}]}
        path, headers["x-api-key"] = "/v1/messages", "sk-ant-loadtest"
    else:
        doc = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
        verb = "streamGenerateContent?alt=sse" if stream else "generateContent"
        path, headers["x-goog-api-key"] = f"/v1beta/models/gemini-2.5-flash:{verb}", "loadtest"
    if stream:
        headers["accept"] = "text/event-stream"
        if api != "gemini":
            doc["stream"] = True
    return path, json.dumps(doc, ensure_ascii=False).encode(), headers


def reply_text(api: str, stream: bool, body: bytes) -> str:
    """The assistant's text from a reply (a JSON document or an event stream)."""
    if not stream:
        doc = json.loads(body)
        if api == "openai":
            return str(doc["choices"][0]["message"]["content"])
        if api == "anthropic":
            return "".join(part["text"] for part in doc["content"])
        return "".join(p["text"] for p in doc["candidates"][0]["content"]["parts"])
    text = []
    for line in body.decode("utf-8").splitlines():
        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
            continue
        event = json.loads(line[5:])
        if api == "openai":
            text.append(event["choices"][0]["delta"].get("content") or "")
        elif api == "anthropic":
            if event.get("type") == "content_block_delta":
                text.append(event["delta"]["text"])
        else:
            text.extend(p.get("text", "") for p in event["candidates"][0]["content"]["parts"])
    return "".join(text)


# ---------------------------------------------------------------- one simulated user

@dataclass(frozen=True)
class Sample:
    started: float      # monotonic seconds
    latency_ms: float
    api: str
    status: int         # 0 when no HTTP answer came
    outcome: str        # "ok", "blocked" or an error kind


@dataclass(frozen=True)
class Plan:
    proxies: tuple[tuple[str, int], ...]
    targets: dict[str, tuple[str, int]]          # api -> (host, port) of the AI service
    context: ssl.SSLContext
    prompts: tuple[Prompt, ...]
    think_seconds: float
    stream_share: float
    stop_at: float


def error_kind(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, ssl.SSLError):
        return "tls"
    if isinstance(error, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError):
        return "connection_reset"
    if isinstance(error, OSError) and "Tunnel connection failed" in str(error):
        return "tunnel_refused"
    if isinstance(error, ValueError | KeyError | IndexError | TypeError):
        return "unreadable_reply"
    return type(error).__name__


def run_user(number: int, plan: Plan, samples: list[Sample], start_at: float) -> None:
    rng = random.Random(number)
    proxy_host, proxy_port = plan.proxies[number % len(plan.proxies)]
    connections: dict[str, http.client.HTTPSConnection] = {}
    time.sleep(max(0.0, start_at - time.monotonic()))
    while time.monotonic() < plan.stop_at:
        prompt = rng.choice(plan.prompts)
        api = rng.choices(APIS, API_WEIGHTS)[0]
        stream = rng.random() < plan.stream_share
        path, body, headers = build_request(api, prompt.text, stream)
        started = time.monotonic()
        status = 0
        try:
            conn = connections.get(api)
            if conn is None:
                conn = http.client.HTTPSConnection(proxy_host, proxy_port, context=plan.context,
                                                   timeout=REQUEST_TIMEOUT)
                conn.set_tunnel(*plan.targets[api])
                connections[api] = conn
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            status, answer = response.status, response.read()
            outcome = judge(api, stream, prompt, status, response.getheader("x-guard-event-id"), answer)
        except Exception as e:  # one failed request is a result, not the end of the user
            outcome = error_kind(e)
            with contextlib.suppress(Exception):
                connections.pop(api).close()
        samples.append(Sample(started, (time.monotonic() - started) * 1000, api, status, outcome))
        time.sleep(rng.expovariate(1 / plan.think_seconds) if plan.think_seconds > 0 else 0)
    for conn in connections.values():
        conn.close()


def judge(api: str, stream: bool, prompt: Prompt, status: int, event_id: str | None, body: bytes) -> str:
    """'ok', 'blocked', or what was wrong with the answer."""
    if status == 403 and event_id:
        return "blocked" if prompt.expect_block is not False else "unexpected_block"
    if status != 200:
        return f"http_{status}"
    if prompt.expect_block:
        return "classified_not_blocked"
    if reply_text(api, stream, body) != ECHO_PREFIX + prompt.text:
        return "wrong_reply"  # not the original prompt back: redaction was not restored exactly
    return "ok"


# ---------------------------------------------------------------- what the nodes say

def scrape(ops_url: str) -> Counter[tuple[str, str]]:
    """(metric, label) -> value for the decision and failure counters of one node."""
    with urllib.request.urlopen(f"{ops_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    values: Counter[tuple[str, str]] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "guard_requests_total":
                values[("decision", sample.labels["decision"])] += sample.value
            elif sample.name == "guard_inspection_failures_total":
                values[("failure", sample.labels["reason"])] += sample.value
    return values


def process_tree(pid: int) -> list[Path]:
    """/proc entries of a process and all its descendants (the inspection workers), Linux only."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(Path(f"/proc/{current}"))
        todo.extend(children.get(current, []))
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants."""
    total = 0.0
    for proc in process_tree(pid):
        with contextlib.suppress(OSError, IndexError):
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, MB."""
    total = 0
    for proc in process_tree(pid):
        with contextlib.suppress(OSError, ValueError):
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


# ---------------------------------------------------------------- local nodes

@dataclass
class LocalNodes:
    """A stand-in upstream (its own process) and guard proxies sharing one confdir (one CA) and store."""

    work: Path
    nodes: int
    workers: int
    audit_db: str
    proxies: list[ProxyProcess] = field(default_factory=list)
    ops_urls: list[str] = field(default_factory=list)
    targets: dict[str, tuple[str, int]] = field(default_factory=dict)

    @contextlib.contextmanager
    def running(self) -> Iterator[LocalNodes]:
        mp = multiprocessing.get_context("fork")
        cert, key = make_self_signed_cert(self.work)
        parent, child = mp.Pipe()
        upstream = mp.Process(target=_serve_upstreams, args=(child, cert, key, len(APIS)), daemon=True)
        upstream.start()
        try:
            ports = parent.recv()
            self.targets = {api: ("127.0.0.1", port) for api, port in zip(APIS, ports, strict=True)}
            policy = self.work / "policy.yaml"
            services = "".join(f'  - {{name: load-{api}, hosts: ["127.0.0.1:{port}"], api: {api}}}\n'
                               for api, (_, port) in self.targets.items())
            policy.write_text(f"extends: default\nservices:\n{services}", encoding="utf-8")
            with contextlib.ExitStack() as stack:
                for number in range(1, self.nodes + 1):  # one after the other: the first writes the CA
                    stack.enter_context(self._node(number, policy))
                yield self
        finally:
            parent.send("stop")
            upstream.join(timeout=10)
            if upstream.is_alive():
                upstream.terminate()

    @contextlib.contextmanager
    def _node(self, number: int, policy: Path) -> Iterator[ProxyProcess]:
        home = self.work / f"node-{number}"
        home.mkdir()
        port, ops = free_port(), free_port()
        command = [sys.executable, "-m", "guard.cli", "proxy", "--listen-port", str(port),
                   "--policy", str(policy), "--confdir", str(self.work), "--audit-db", self.audit_db,
                   "--ops-listen", f"127.0.0.1:{ops}", "--set", "ssl_insecure=true",
                   "--set", f"guard_workers={self.workers}", "--set", f"guard_node=node-{number}",
                   "--set", f"guard_audit_journal={home / 'journal.jsonl'}"]
        with ProxyProcess(f"guard node-{number}", command, port, home / "proxy.log",
                          ready_line="inspection workers") as proxy:
            self.proxies.append(proxy)
            self.ops_urls.append(f"http://127.0.0.1:{ops}")
            yield proxy

    @property
    def ca(self) -> Path:
        return self.work / "mitmproxy-ca-cert.pem"

    def pids(self) -> list[int]:
        return [p.process.pid for p in self.proxies if p.process is not None]

    def verify(self) -> str:
        command = [sys.executable, "-m", "guard.cli", "audit", "verify", "--audit-db", self.audit_db]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        said = (done.stdout + done.stderr).strip()
        return said if done.returncode == 0 else f"{said} (exit {done.returncode})"


# ---------------------------------------------------------------- the run and its report

def percentile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass
class Report:
    users: int
    duration_s: float
    ramp_s: float
    think_s: float
    proxies: int
    requests: int
    throughput_rps: float
    latency_ms: dict[str, float]
    answers: dict[str, int]
    errors: dict[str, int]
    decisions: dict[str, int]
    inspection_failures: dict[str, int]
    by_api: dict[str, int]
    prompt_chars_mean: float
    client_cpu_s: float
    guard_cpu_s: float | None = None   # local nodes: CPU of the proxies and their workers
    guard_rss_mb: float | None = None  # local nodes: their resident memory at the end
    audit_verify: str | None = None

    @property
    def failed(self) -> int:
        return sum(self.errors.values()) + sum(self.inspection_failures.values())


def summarise(samples: list[Sample], plan: Plan, users: int, duration: float, ramp: float,
              steady_from: float, before: list[Counter[tuple[str, str]]],
              after: list[Counter[tuple[str, str]]], client_cpu: float) -> Report:
    steady = [s for s in samples if s.started >= steady_from]
    window = max(1e-9, plan.stop_at - steady_from)
    answered = sorted(s.latency_ms for s in steady if s.outcome in ("ok", "blocked"))
    delta: Counter[tuple[str, str]] = Counter()
    for b, a in zip(before, after, strict=True):
        delta.update({k: v - b.get(k, 0) for k, v in a.items()})
    return Report(
        users=users, duration_s=duration, ramp_s=ramp, think_s=plan.think_seconds, proxies=len(plan.proxies),
        requests=len(samples),
        throughput_rps=round(sum(1 for s in steady if s.outcome in ("ok", "blocked")) / window, 1),
        latency_ms={name: round(percentile(answered, q), 1)
                    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))},
        answers=dict(Counter(str(s.status) for s in samples)),
        errors=dict(Counter(s.outcome for s in samples if s.outcome not in ("ok", "blocked"))),
        decisions={k[1]: int(v) for k, v in sorted(delta.items()) if k[0] == "decision" and v},
        inspection_failures={k[1]: int(v) for k, v in sorted(delta.items()) if k[0] == "failure" and v},
        by_api=dict(Counter(s.api for s in samples)),
        prompt_chars_mean=round(sum(len(p.text) for p in plan.prompts) / len(plan.prompts), 1),
        client_cpu_s=round(client_cpu, 1),
    )


def run(plan: Plan, users: int, ramp: float, ops_urls: Sequence[str]) -> Report:
    before = [scrape(url) for url in ops_urls]
    samples: list[Sample] = []
    began, cpu_began = time.monotonic(), time.process_time()
    threads = [threading.Thread(target=run_user, args=(n, plan, samples, began + ramp * n / users),
                                name=f"user-{n}", daemon=True) for n in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, plan.stop_at - time.monotonic()) + REQUEST_TIMEOUT + 5)
    after = [scrape(url) for url in ops_urls]
    return summarise(samples, plan, users, plan.stop_at - began, ramp, began + ramp, before, after,
                     time.process_time() - cpu_began)


def print_report(report: Report, out: Any = sys.stdout) -> None:
    lat = report.latency_ms
    rows = [
        ("users / proxies", f"{report.users} / {report.proxies}"),
        ("duration (ramp) s", f"{report.duration_s:.0f} ({report.ramp_s:.0f})"),
        ("think time, mean s", f"{report.think_s:g}"),
        ("prompt size, mean chars", f"{report.prompt_chars_mean:g}"),
        ("requests", f"{report.requests}  by API {report.by_api}"),
        ("throughput (steady) req/s", f"{report.throughput_rps}"),
        ("latency p50 / p95 / p99 / max ms", f"{lat['p50']} / {lat['p95']} / {lat['p99']} / {lat['max']}"),
        ("answers by status", str(report.answers)),
        ("errors by kind", str(report.errors or "none")),
        ("guard decisions", str(report.decisions)),
        ("inspection failures", str(report.inspection_failures or "none")),
        ("CPU s: load generator / guard", f"{report.client_cpu_s} / {report.guard_cpu_s}"),
        ("guard memory (RSS) MB", f"{report.guard_rss_mb}"),
    ]
    if report.audit_verify is not None:
        rows.append(("guard audit verify", report.audit_verify))
    for name, value in rows:
        out.write(f"{name:34} {value}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200, help="simulated users (default 200)")
    parser.add_argument("--duration", type=float, default=60, help="seconds of load (default 60)")
    parser.add_argument("--ramp", type=float, help="seconds over which users start (default: duration/6)")
    parser.add_argument("--think", type=float, default=1.0,
                        help="mean think time between prompts, s (default 1)")
    parser.add_argument("--stream-share", type=float, default=0.3,
                        help="share of streamed requests (default 0.3)")
    parser.add_argument("--corpus", type=Path, default=SAMPLE_CORPUS,
                        help="JSON lines with a text field (default: the bundled synthetic corpus)")
    parser.add_argument("--records-per-prompt", type=int, default=1,
                        help="corpus records joined into one prompt (default 1)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    external = parser.add_argument_group("running proxies")
    external.add_argument("--proxy", action="append", default=[],
                          help="http://HOST:PORT (repeat to spread users)")
    external.add_argument("--ops", action="append", default=[],
                          help="a node's ops listener (http://HOST:PORT), for its decisions")
    external.add_argument("--ca", type=Path, help="the guard's CA certificate (PEM)")
    for api in APIS:
        external.add_argument(f"--{api}", metavar="https://HOST:PORT",
                              help=f"the {api} service the proxies open")
    local = parser.add_argument_group("local nodes")
    local.add_argument("--start-local", action="store_true",
                       help="start a stand-in upstream and guard nodes here")
    local.add_argument("--nodes", type=int, default=1, help="guard proxies to start (default 1)")
    local.add_argument("--workers", type=int, default=2, help="guard_workers per node (default 2)")
    local.add_argument("--audit-db", help="the nodes' shared audit store (default: SQLite in the work dir)")
    args = parser.parse_args(argv)

    prompts = tuple(load_prompts(args.corpus, args.records_per_prompt))
    ramp = args.duration / 6 if args.ramp is None else args.ramp
    if args.start_local:
        with tempfile.TemporaryDirectory(prefix="guard-load-") as tmp:
            audit_db = args.audit_db or f"sqlite:///{Path(tmp) / 'audit.db'}"
            with LocalNodes(Path(tmp), args.nodes, args.workers, audit_db).running() as nodes:
                proxies = tuple(("127.0.0.1", p.port) for p in nodes.proxies)
                context = ssl.create_default_context(cafile=str(nodes.ca))
                plan = Plan(proxies, nodes.targets, context, prompts, args.think, args.stream_share,
                            time.monotonic() + args.duration)
                cpu_before = sum(cpu_seconds(pid) for pid in nodes.pids())
                report = run(plan, args.users, ramp, nodes.ops_urls)
                report.guard_cpu_s = round(sum(cpu_seconds(pid) for pid in nodes.pids()) - cpu_before, 1)
                report.guard_rss_mb = round(sum(rss_mb(pid) for pid in nodes.pids()))
            report.audit_verify = nodes.verify()
    else:
        if not args.proxy or not args.ca:
            parser.error("give --proxy and --ca (and the services), or --start-local")
        targets = {}
        for api in APIS:
            url = getattr(args, api)
            if url:
                parts = urlsplit(url)
                targets[api] = (parts.hostname or "", parts.port or 443)
        if set(targets) != set(APIS):
            parser.error("give --openai, --anthropic and --gemini: the services the proxies open")
        proxies = tuple(((urlsplit(p).hostname or ""), urlsplit(p).port or 3128) for p in args.proxy)
        plan = Plan(proxies, targets, ssl.create_default_context(cafile=str(args.ca)), prompts, args.think,
                    args.stream_share, time.monotonic() + args.duration)
        report = run(plan, args.users, ramp, args.ops)
    if args.json:
        print(json.dumps(asdict(report), ensure_ascii=False, indent=2))
    else:
        print_report(report)
    chain_intact = report.audit_verify is None or report.audit_verify.startswith("audit chain intact")
    return 0 if not report.failed and chain_intact else 1


if __name__ == "__main__":
    sys.exit(main())
