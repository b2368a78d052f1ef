"""Local HTTPS servers standing in for the AI services: they record every request and echo the prompt back.

Each server answers OpenAI Chat Completions, Anthropic Messages and Gemini generateContent (plain JSON
and SSE) with ``你說：`` + the user's last message, streamed in small deltas so that a placeholder such
as ``<TW_NATIONAL_ID_1>`` is split across several events. ``GET /chat`` serves a small chat page whose
script posts the prompt with ``fetch`` and reads the event stream into the page; ``GET /form`` serves a
plain HTML form (a page navigation, no script) whose post is answered with an HTML echo. ``/v1/files``
answers with an OpenAI file object. Any other request is answered with a JSON echo of the body.
A ``?delay=SECONDS`` query (at most 30) holds a POST that long before answering: a slow model, for the
graceful-shutdown test.
Stdlib only, so it also runs in the benchmark.
"""

from __future__ import annotations

import datetime
import gzip
import html
import ipaddress
import json
import ssl
import threading
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ECHO_PREFIX = "你說："
DELTA_CHARS = 4  # small enough that every placeholder spans several stream events
MAX_DELAY_SECONDS = 30.0


def make_self_signed_cert(directory: Path, name: str = "guard-e2e-upstream") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost; returns (cert PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass(frozen=True)
class Recorded:
    """One request as it arrived at the upstream: the body exactly as sent on the wire."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def decoded(self) -> bytes:
        """The body after undoing its Content-Encoding (gzip/deflate), for content checks."""
        encoding = self.headers.get("content-encoding", "").lower()
        try:
            if encoding == "gzip":
                return gzip.decompress(self.body)
            if encoding == "deflate":
                return zlib.decompress(self.body)
        except (OSError, EOFError, zlib.error):
            pass  # a corrupt body is recorded as it came
        return self.body

    @property
    def text(self) -> str:
        return self.decoded().decode("utf-8", "replace")


def last_user_text(doc: Any) -> str:
    """The user's last message in an OpenAI, Anthropic or Gemini request body."""
    if not isinstance(doc, dict):
        return ""
    turns = doc.get("messages") or doc.get("input")  # Chat Completions, or the Responses API's items
    if isinstance(turns, list) and turns and isinstance(turns[-1], dict):
        content = turns[-1].get("content")
        if isinstance(content, list):
            return "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return str(content or "")
    if isinstance(doc.get("contents"), list) and doc["contents"]:
        parts = doc["contents"][-1].get("parts") or []
        return "".join(p.get("text", "") for p in parts if isinstance(p, dict))
    return ""


def _chunks(text: str) -> list[str]:
    return [text[i:i + DELTA_CHARS] for i in range(0, len(text), DELTA_CHARS)] or [""]


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"{head}data: {payload}\n\n".encode()


def openai_reply(text: str, model: str) -> dict[str, Any]:
    return {"id": "chatcmpl-e2e", "object": "chat.completion", "created": 1700000000, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def openai_response(text: str, model: str) -> dict[str, Any]:
    """A Responses API reply (``POST /v1/responses``), as the openai SDK reads it."""
    message = {"type": "message", "id": "msg_e2e", "status": "completed", "role": "assistant",
               "content": [{"type": "output_text", "text": text, "annotations": []}]}
    return {"id": "resp_e2e", "object": "response", "created_at": 1700000000, "status": "completed",
            "model": model, "output": [message],
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}


def openai_stream(text: str, model: str) -> list[bytes]:
    base = {"id": "chatcmpl-e2e", "object": "chat.completion.chunk", "created": 1700000000, "model": model}
    events = [_sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                          "finish_reason": None}]})]
    events += [_sse({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
               for piece in _chunks(text)]
    events.append(_sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    events.append(_sse("[DONE]"))
    return events


def anthropic_reply(text: str, model: str) -> dict[str, Any]:
    return {"id": "msg_e2e", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1}}


def anthropic_stream(text: str, model: str) -> list[bytes]:
    start = {**anthropic_reply("", model), "content": [], "stop_reason": None}
    events = [_sse({"type": "message_start", "message": start}, "message_start"),
              _sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                   "content_block_start")]
    events += [_sse({"type": "content_block_delta", "index": 0,
                     "delta": {"type": "text_delta", "text": piece}}, "content_block_delta")
               for piece in _chunks(text)]
    events += [_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
               _sse({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                     "usage": {"output_tokens": 1}}, "message_delta"),
               _sse({"type": "message_stop"}, "message_stop")]
    return events


def gemini_reply(text: str) -> dict[str, Any]:
    return {"candidates": [{"content": {"parts": [{"text": text}], "role": "model"},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2}}


def gemini_stream(text: str) -> list[bytes]:
    return [_sse({"candidates": [{"content": {"parts": [{"text": piece}], "role": "model"}, "index": 0}]})
            for piece in _chunks(text)]


CHAT_PAGE = """<!doctype html>
<html lang="zh-Hant"><head><meta charset="utf-8"><title>e2e chat</title></head>
<body>
<textarea id="prompt"></textarea><button id="send">送出</button>
<div id="out"></div>
<script>
document.getElementById("send").addEventListener("click", async () => {
  const out = document.getElementById("out");
  out.textContent = ""; delete out.dataset.done;
  const body = JSON.stringify({model: "gpt-4o-mini", stream: true,
    messages: [{role: "user", content: document.getElementById("prompt").value}]});
  try {
    const res = await fetch("/v1/chat/completions", {method: "POST", body: body,
      headers: {"content-type": "application/json", "accept": "text/event-stream"}});
    out.dataset.status = res.status;
    if (!res.ok) {
      const err = await res.json();
      out.textContent = err.error.message;
    } else {
      const reader = res.body.getReader(), decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, {stream: true});
        let cut;
        while ((cut = buffer.indexOf("\\n\\n")) >= 0) {
          const event = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
          const data = event.split("\\n").filter(l => l.startsWith("data: "))
                            .map(l => l.slice(6)).join("\\n");
          if (!data || data === "[DONE]") continue;
          out.textContent += JSON.parse(data).choices[0].delta.content || "";
        }
      }
    }
  } catch (e) {
    out.dataset.error = String(e);
  }
  out.dataset.done = "1";
});
</script>
</body></html>
"""


FORM_PAGE = """<!doctype html>
<html lang="zh-Hant"><head><meta charset="utf-8"><title>e2e form</title></head>
<body><form method="post" action="/v1/forms/chat">
<textarea id="prompt" name="prompt"></textarea><button id="send" type="submit">送出</button>
</form></body></html>
"""


def form_reply(prompt: str) -> bytes:
    return (f'<!doctype html><html lang="zh-Hant"><head><meta charset="utf-8"><title>e2e reply</title>'
            f'</head><body><p id="reply">{html.escape(ECHO_PREFIX + prompt)}</p></body></html>').encode()


def file_object(body: bytes) -> dict[str, Any]:
    return {"id": "file-e2e", "object": "file", "bytes": len(body), "created_at": 1700000000,
            "filename": "upload", "purpose": "assistants", "status": "processed"}


def send_chunked(handler: BaseHTTPRequestHandler, content_type: str, chunks: list[bytes],
                 *headers: tuple[str, str]) -> None:
    """A 200 reply with a chunked body, one chunk per piece, flushed: the proxy sees them one by one."""
    handler.send_response(200)
    handler.send_header("content-type", content_type)
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("transfer-encoding", "chunked")
    handler.end_headers()
    for chunk in chunks:
        handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        handler.wfile.flush()
    handler.wfile.write(b"0\r\n\r\n")


class TlsServer(ThreadingHTTPServer):
    """A threaded HTTPS server on 127.0.0.1 (the stand-ins' common part), served from its own thread."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], cert: Path, key: Path, port: int = 0,
                 name: str = "stand-in") -> None:
        super().__init__(("127.0.0.1", port), handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        # The handshake happens in the request thread, so one slow client never holds up the others.
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, name=f"{name}-{self.port}", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up (mid-handshake, mid-stream) is not a test failure


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stalls
    server: UpstreamServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, payload: Any, status: int = 200) -> None:
        self._send(status, json.dumps(payload, ensure_ascii=False).encode(), "application/json")

    def _send_stream(self, events: list[bytes]) -> None:
        send_chunked(self, "text/event-stream; charset=utf-8", events, ("cache-control", "no-cache"))

    def do_GET(self) -> None:
        self.server.record(Recorded("GET", self.path, {k.lower(): v for k, v in self.headers.items()}, b""))
        if self.path.split("?", 1)[0] == "/chat":
            self._send(200, CHAT_PAGE.encode(), "text/html; charset=utf-8")
        elif self.path.split("?", 1)[0] == "/form":
            self._send(200, FORM_PAGE.encode(), "text/html; charset=utf-8")
        else:
            self._send_json({"ok": True, "path": self.path})

    def do_POST(self) -> None:
        body = self._read_body()
        recorded = Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        self.server.record(recorded)
        delay = parse_qs(urlsplit(self.path).query).get("delay", ["0"])[0]
        time.sleep(min(float(delay), MAX_DELAY_SECONDS))
        try:
            doc = json.loads(recorded.decoded())
        except ValueError:
            doc = None
        path = self.path.split("?", 1)[0]
        if self.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            prompt = parse_qs(recorded.text).get("prompt", [""])[0]
            self._send(200, form_reply(prompt), "text/html; charset=utf-8")
            return
        if path.endswith("/files"):
            self._send_json(file_object(body))
            return
        text = ECHO_PREFIX + last_user_text(doc)
        model = str(doc.get("model", "e2e-model")) if isinstance(doc, dict) else "e2e-model"
        streaming = isinstance(doc, dict) and doc.get("stream") is True
        if path.endswith("/chat/completions"):
            if streaming:
                self._send_stream(openai_stream(text, model))
            else:
                self._send_json(openai_reply(text, model))
        elif path.endswith("/responses"):
            self._send_json(openai_response(text, model))
        elif path.endswith("/messages"):
            if streaming:
                self._send_stream(anthropic_stream(text, model))
            else:
                self._send_json(anthropic_reply(text, model))
        elif path.endswith(":streamGenerateContent"):
            self._send_stream(gemini_stream(text))
        elif path.endswith(":generateContent"):
            self._send_json(gemini_reply(text))
        else:
            self._send_json({"echo": recorded.text})


class UpstreamServer(TlsServer):
    """A threaded HTTPS server on 127.0.0.1 that records what it receives."""

    request_queue_size = 128

    def __init__(self, cert: Path, key: Path, port: int = 0) -> None:
        super().__init__(_Handler, cert, key, port, name="upstream")
        self.requests: list[Recorded] = []

    @property
    def base_url(self) -> str:
        return f"https://{self.host_port}"

    def record(self, recorded: Recorded) -> None:
        with self._lock:
            self.requests.append(recorded)

    def received(self, marker: str) -> list[Recorded]:
        """Every request whose decoded body or path contains ``marker``."""
        with self._lock:
            return [r for r in self.requests if marker in r.text or marker in r.path]


