"""Shared pieces of the end-to-end tests: the guard proxy process, client runners, prompts and assertions."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import secrets
import socket
import ssl
import string
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.e2e.upstream import ECHO_PREFIX, UpstreamServer

REPO = Path(__file__).resolve().parents[2]
CLIENTS = Path(__file__).resolve().parent / "clients"
WORKERS_UP = "inspection workers"  # the proxy's start-up log line once the pool is ready

# Identifiers the default policy redacts (valid checksums) and a marking it blocks.
NATIONAL_ID = "A123456789"
OTHER_NATIONAL_ID = "F131104093"
MOBILE = "0912345678"
RAW_VALUES = (NATIONAL_ID, OTHER_NATIONAL_ID, MOBILE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nonce() -> str:
    """A tag that finds one test's requests at the upstream (lower-case letters: no recognizer fires)."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(10))


def pii_prompt(tag: str) -> str:
    return f"請協助回覆民眾陳情，身分證字號 {NATIONAL_ID}，手機 {MOBILE}，追蹤碼 {tag}。"


def classified_prompt(tag: str) -> str:
    return f"密等：機密\n主旨：採購案評選會議紀錄，請幫我摘要重點。追蹤碼 {tag}"


def clean_prompt(tag: str) -> str:
    return f"請用三句話介紹台灣的夜市文化。追蹤碼 {tag}"


def echoed(prompt: str) -> str:
    """What the stand-in service answers, and so what the user must see once values are restored."""
    return ECHO_PREFIX + prompt


# ---------------------------------------------------------------- the guard proxy process

@dataclass
class GuardProxy:
    """``guard proxy`` as a real subprocess on a free loopback port."""

    confdir: Path
    policy: Path
    log_path: Path
    options: tuple[str, ...] = ()
    audit_db: str = ""  # default: a SQLite file in the confdir
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ca(self) -> Path:
        return self.confdir / "mitmproxy-ca-cert.pem"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def start(self, timeout: float = 120.0) -> GuardProxy:
        command = [sys.executable, "-m", "guard.cli", "proxy", "--listen-port", str(self.port),
                   "--policy", str(self.policy), "--confdir", str(self.confdir),
                   "--audit-db", self.audit_db or f"sqlite:///{self.confdir / 'audit.db'}",
                   "--set", "ssl_insecure=true", "--set", "guard_workers=1"]
        for option in self.options:
            command += ["--set", option]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=self.confdir, stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, **self.env})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                status = self.process.returncode
                raise RuntimeError(f"guard proxy exited with {status}:\n{self.log()[-3000:]}")
            if WORKERS_UP in self.log() and self._listening():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"guard proxy did not start in {timeout:.0f}s:\n{self.log()[-3000:]}")

    def _listening(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True
        return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def events(self) -> list[dict[str, Any]]:
        """The structured inspection events the proxy logged (JSON lines with an ``event_id``)."""
        out = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if isinstance(record, dict) and "event_id" in record:
                        out.append(record)
        return out


def event_for(proxy: GuardProxy, marker: str, timeout: float = 5.0) -> dict[str, Any]:
    """The one event whose path carries ``marker`` (e.g. a tag used as the model name in a Gemini path)."""
    deadline = time.monotonic() + timeout
    while True:
        events = [e for e in proxy.events() if marker in e.get("path", "")]
        if events or time.monotonic() > deadline:
            assert len(events) == 1, f"expected one event for {marker}, got {len(events)}"
            return events[0]
        time.sleep(0.1)


def write_policy(path: Path, services: Mapping[str, tuple[str, Any]],
                 actions: dict[str, str] | None = None) -> Path:
    """A policy that extends the default and catalogues the stand-in services by ``127.0.0.1:PORT``.

    ``actions`` override the default action of some entity types, e.g. ``{"PHONE_NUMBER": "warn"}``.
    """
    lines = ["extends: default"]
    if actions:
        lines += ["entities:", *(f"  {entity}: {{action: {action}}}" for entity, action in actions.items())]
    lines.append("services:")
    for name, (api, server) in services.items():
        servers = server if isinstance(server, tuple | list) else (server,)  # a service on several hosts
        hosts = ", ".join(f'"{s.host_port}"' for s in servers)
        lines.append(f"  - {{name: {name}, hosts: [{hosts}], api: {api}, tier: external}}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def spki_hash(cert_pem: Path) -> str:
    """base64 SHA-256 of a certificate's public key (Chromium's --ignore-certificate-errors-spki-list)."""
    cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


# ---------------------------------------------------------------- clients

def run_client(python: str, script: str, *args: str, timeout: float = 60) -> dict[str, Any]:
    """Run a client script from tests/e2e/clients in the clients' interpreter; return its JSON output."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    done = subprocess.run([python, str(CLIENTS / script), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise AssertionError(f"{script} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_sdk(python: str, script: str, proxy: GuardProxy, server: UpstreamServer, prompt: str,
            stream: bool = False) -> dict[str, Any]:
    args = ["--proxy", proxy.url, "--ca", str(proxy.ca), "--base-url", server.base_url, "--prompt", prompt]
    return run_client(python, script, *args, *(["--stream"] if stream else []))


@dataclass(frozen=True)
class CurlResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def curl(proxy: GuardProxy, url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         cacert: Path | None = None, form: tuple[str, ...] = (), proxy_user: str | None = None) -> CurlResult:
    """Debian curl through the proxy; the body is sent byte for byte (--data-binary from stdin).

    ``form`` fields are curl's own ``--form`` arguments (``file=@PATH;type=text/csv``): a multipart upload.
    """
    command = ["curl", "--silent", "--show-error", "--proxy", proxy.url, "--cacert", str(cacert or proxy.ca),
               "--noproxy", "", "--include", "--max-time", "30"]
    if proxy_user is not None:
        command += ["--proxy-user", proxy_user]
    for name, value in (headers or {}).items():
        command += ["--header", f"{name}: {value}"]
    for field_ in form:
        command += ["--form", field_]
    if body is not None:
        command += ["--data-binary", "@-"]
    done = subprocess.run([*command, url], input=body or b"", capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        raise AssertionError(f"curl exited {done.returncode}: {done.stderr.decode(errors='replace')}")
    return parse_http_response(done.stdout)


def parse_http_response(raw: bytes) -> CurlResult:
    """curl --include output; the proxy's CONNECT answer and any 100 Continue come first and are skipped."""
    head, _, body = raw.partition(b"\r\n\r\n")
    while body.startswith(b"HTTP/"):
        head, _, body = body.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return CurlResult(int(status_line.split()[1]), headers, body)


# ---------------------------------------------------------------- shared assertions

def assert_redacted_upstream(server: UpstreamServer, tag: str, values: tuple[str, ...] = RAW_VALUES) -> str:
    """Exactly one request carried ``tag`` upstream; it holds placeholders and none of the values."""
    seen = server.received(tag)
    assert len(seen) == 1, f"expected one upstream request tagged {tag}, got {len(seen)}"
    text = seen[0].text
    for value in values:
        assert value not in text, "a raw identifier reached the upstream"
    assert "<TW_NATIONAL_ID_1>" in text
    return text


def assert_never_sent(server: UpstreamServer, tag: str) -> None:
    assert server.received(tag) == [], "the upstream received a request that should have been stopped"


def assert_block_message(message: str) -> None:
    """The Traditional Chinese notice: says it was blocked, cites the guideline, gives an event reference."""
    assert "已攔截" in message
    assert "生成式 AI" in message
    assert "事件編號" in message
    for value in RAW_VALUES:
        assert value not in message


def post_chat(proxy: GuardProxy, upstream: UpstreamServer, prompt: str) -> tuple[int, str]:
    """One OpenAI chat request through the proxy's CONNECT tunnel (http.client, so many threads can
    send at once without a subprocess each); returns the status and the guard's event id."""
    context = ssl.create_default_context(cafile=str(proxy.ca))
    conn = http.client.HTTPSConnection("127.0.0.1", proxy.port, context=context, timeout=30)
    try:
        conn.set_tunnel("127.0.0.1", upstream.port)
        body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]},
                          ensure_ascii=False).encode()
        conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("x-guard-event-id") or ""
    finally:
        conn.close()
