"""The request path, pure: which service a request is for, everything in it to inspect, and what leaves.

``guard.addon`` only adapts mitmproxy to this module; tests drive it without a proxy. Completeness has
one home here: a request's body (every string and key, through its service format and the generic
walk), its path and query (decoded), and its header values are all segments of one inspection, and
only what was inspected (or its redaction) is forwarded.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeVar
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from guard.audit.masking import FoundAt, mask_text, mask_value
from guard.formats import embedded
from guard.formats._tree import is_technical
from guard.formats.base import (
    BodyTooLarge,
    FormatError,
    NotRewritable,
    ParsedRequest,
    RequestFormat,
    Segment,
    UnreadableContent,
    media_type,
)
from guard.formats.compression import decode_body
from guard.policy import Policy, ServiceSpec, split_host_port

#: ``api`` of catalogued AI hosts that are known but not supported: every request gets a block page.
UNSUPPORTED_API = "unsupported"

REASON_HEADER = "x-guard-reason"
# A stated reason typed into the prompt itself: 「查詢事由：…」 on a line of its own.
REASON_IN_TEXT = re.compile(r"^[ \t]*(?:查詢事由|事由)[:：][ \t]*(\S.{3,200}?)[ \t]*$", re.MULTILINE)
# The same line with its line break, for taking it out of what is forwarded.
_REASON_LINE = re.compile(r"^[ \t]*(?:查詢事由|事由)[:：][ \t]*\S.{3,200}?[ \t]*(?:\r?\n|$)", re.MULTILINE)
MIN_REASON_CHARS = 4

#: Header values that are credentials or transport framing, not text: never inspected, never stored.
TECHNICAL_HEADERS = frozenset({
    "authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "content-length",
    "content-encoding", "transfer-encoding", "connection", "keep-alive", "host", "te", "upgrade",
    "accept-encoding", "sec-websocket-key", "sec-websocket-accept", "sec-websocket-version",
    "sec-websocket-extensions", "if-none-match", "if-modified-since", "proxy-connection",
})


# Printable ASCII but "%": what a percent-encoded header value keeps as it is.
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7f) if chr(c) != "%")


# ---------------------------------------------------------------- the request as the proxy saw it

@dataclass(frozen=True)
class Request:
    """One HTTP request and the connection it came on; built by the addon from a mitmproxy flow."""

    method: str
    path: str                              # origin-form path with query, as sent
    headers: tuple[tuple[str, str], ...]   # every header field, in order, duplicates kept
    body: bytes                            # the raw body (still content-encoded)
    host: str                              # the host the request names (Host header or absolute URI)
    port: int
    tunnel: tuple[str, int] | None = None  # the CONNECT target (or transparent destination)
    sni: str = ""                          # the TLS client hello's server name
    authority: str = ""                    # an absolute-form URI's or HTTP/2 ``:authority``'s host[:port]

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name), "")

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name]


@dataclass(frozen=True)
class Route:
    """Which catalogued service a request belongs to (None: not AI, pass it on untouched)."""

    service: ServiceSpec | None
    refusal: str = ""  # why the request must be refused although it is on an AI tunnel


def intercepts(policy: Policy, tunnel: tuple[str, int] | None, sni: str) -> bool:
    """Open a TLS connection when its CONNECT target OR its SNI is a catalogued AI host."""
    return _tunnel_service(policy, tunnel, sni) is not None


def _tunnel_service(policy: Policy, tunnel: tuple[str, int] | None, sni: str) -> ServiceSpec | None:
    port = tunnel[1] if tunnel else None
    by_target = policy.service_for_host(tunnel[0], port) if tunnel else None
    return by_target or (policy.service_for_host(sni, port) if sni else None)


def route(policy: Policy, request: Request) -> Route:
    """The service is the tunnel's; a Host or absolute URI naming another host is refused.

    Without a tunnel (plain HTTP through the proxy) the request's own host decides, and still every
    name it gives must agree.
    """
    service = _tunnel_service(policy, request.tunnel, request.sni)
    if service is None:
        service = policy.service_for_host(request.host, request.port)
    if service is None:
        return Route(None)
    hosts = request.header_values("host")
    if len(hosts) > 1:
        return Route(service, "the request carries more than one Host header")
    default_port = request.tunnel[1] if request.tunnel else request.port
    # The absolute URI's host (or else the Host header's), every Host header and the :authority.
    named: list[tuple[str, int | None]] = [(request.host, request.port)]
    named += [split_host_port(value) for value in (*hosts, request.authority) if value]
    for host, port in named:
        other = policy.service_for_host(host, port or default_port)
        if other is None or other.name != service.name:
            return Route(service, "the request names a different host than its connection")
    return Route(service)


# ---------------------------------------------------------------- what is inspected

# Between the pieces of the request joined into one segment: a line that holds only an invisible
# separator, which no text a person types contains.
PIECE_SEPARATOR = "\n\u2063\n"

@dataclass(frozen=True)
class Inspection:
    """Every segment of one request: body first, then path and query parts, then header values.

    Its derived views are computed once (cached): the addon reads them several times a request.
    """

    body: bytes               # the decoded body the format read
    parsed: ParsedRequest     # the body's segments and writer
    url_parts: tuple[Segment, ...]            # decoded path steps, query keys and values
    header_parts: tuple[Segment, ...]         # header values
    url_slots: tuple[tuple[str, int], ...]    # ("path", i) / ("query-key", i) / ("query-value", i)
    header_slots: tuple[int, ...]             # index into Request.headers

    @functools.cached_property
    def url_segments(self) -> tuple[Segment, ...]:
        return _joined(self.url_parts, "url")

    @functools.cached_property
    def header_segments(self) -> tuple[Segment, ...]:
        return _joined(self.header_parts, "headers")

    @functools.cached_property
    def pieces(self) -> tuple[Segment, ...]:
        """Everything but the prompt texts: the rest of the body, the URL, the header values."""
        return self.parsed.extra + self.url_segments + self.header_segments

    @functools.cached_property
    def _joined_pieces(self) -> bool:
        # One piece too: led by the separator, the body's JSON keys (``model``) never run into a value
        # split across the last two messages (F12345 | 6784 | model… read as F123456784model).
        pieces = self.pieces
        return bool(pieces) and not any(PIECE_SEPARATOR in p.text for p in pieces)

    @functools.cached_property
    def segments(self) -> tuple[Segment, ...]:
        """What the engine reads: the prompt texts one by one, then all other pieces as one segment.

        Each segment costs the engine a pass (about 1.5 ms), and the pieces are short; a piece that
        holds the separator itself keeps them apart.
        """
        if self._joined_pieces:
            # Led by a separator too: the engine also reads segments joined end to end (a value split
            # across two content parts), and a prompt's last word must not run into the first piece.
            joined = PIECE_SEPARATOR + PIECE_SEPARATOR.join(p.text for p in self.pieces)
            where = self.pieces[0].where if len(self.pieces) == 1 else "request"
            return (*self.parsed.segments, Segment(joined, where))
        return self.parsed.segments + self.pieces

    def locate(self, piece: int) -> tuple[int, int]:
        """Where piece number ``piece`` is: (segment index, offset in that segment)."""
        first = len(self.parsed.segments)
        if not self._joined_pieces:
            return first + piece, 0
        before = self.pieces[:piece]
        return first, len(PIECE_SEPARATOR) * (1 + len(before)) + sum(len(p.text) for p in before)

    def per_piece(self, new_texts: Sequence[str]) -> list[str]:
        """New texts per prompt segment and per piece; a redaction across pieces cannot be written back."""
        first = len(self.parsed.segments)
        if not self._joined_pieces:
            return list(new_texts)
        lead, *parts = new_texts[first].split(PIECE_SEPARATOR)
        if lead or len(parts) != len(self.pieces):
            raise NotRewritable("a redaction spans two parts of the request")
        return [*new_texts[:first], *parts]

    @property
    def url_piece(self) -> int:
        return len(self.parsed.extra)

    @property
    def header_piece(self) -> int:
        return len(self.parsed.extra) + len(self.url_segments)

    @functools.cached_property
    def texts(self) -> tuple[str, ...]:
        return tuple(s.text for s in self.segments)


def decoded_body(request: Request, body_limit: int) -> bytes:
    """The request body with its content coding undone, within ``body_limit``."""
    if not request.body:
        return b""
    body = decode_body(request.body, request.header("content-encoding"), body_limit)
    if len(body) > body_limit:
        raise BodyTooLarge("request body is larger than guard_body_limit")
    return body


def unreadable(fmt: RequestFormat, service: ServiceSpec, body: bytes,
               error: UnreadableContent) -> ParsedRequest:
    """What a body the format could not read becomes: an error under ``block``, else listed as uninspected."""
    if service.unreadable_upload == "block":
        raise error
    return ParsedRequest(fmt.name, body, (), (str(error),))


def inspection(fmt: RequestFormat, service: ServiceSpec, request: Request, body_limit: int,
               extracted: ParsedRequest | None = None) -> Inspection:
    """Read everything in ``request``; errors are GuardFormatError (the caller fails closed).

    ``extracted`` is the body as a worker already read it (documents are read off the event loop).
    A body the guard cannot fully read (binary of unknown type, JSON labelled as a form) is listed in
    ``parsed.uninspected`` and the service's unreadable rule decides; it is never passed silently.
    """
    body = extracted.body if extracted is not None else decoded_body(request, body_limit)
    parsed = extracted or ParsedRequest(fmt.name, b"", ())
    if body and extracted is None:
        try:
            parsed = fmt.extract(body, request.header("content-type"), request.path)
        except RecursionError:
            raise FormatError("the body nests too deeply to read") from None
        except UnreadableContent as e:
            parsed = unreadable(fmt, service, body, e)
    json_as_form = getattr(fmt, "reads_json_forms", False)  # Poe's reader takes such a body as the JSON it is
    if body and mislabelled(body, request.header("content-type")) and not json_as_form:
        parsed = replace(parsed, uninspected=(*parsed.uninspected, "body: JSON sent as a form"))
    url = _url_pieces(request.path)
    headers = _header_pieces(request.headers)
    # A fragment beside another piece is read with it: F12345 | 6784 in two parameters is one value.
    beside = len(parsed.extra) + sum(shape is not _Shape.WORD for _, _, shape in (*url, *headers)) > 1
    url_segments, url_slots = _read(url, beside)
    header_segments, header_slots = _read(headers, beside)
    return Inspection(body, parsed, url_segments, header_segments, url_slots, header_slots)


def mislabelled(body: bytes, content_type: str) -> bool:
    """A JSON document labelled as a form: the service may read it as JSON, the form reader cannot."""
    form = media_type(content_type) == "application/x-www-form-urlencoded"
    return form and body.lstrip()[:1] in (b"{", b"[")


def _joined(parts: Sequence[Segment], where: str) -> tuple[Segment, ...]:
    """The parts as one segment, one per line: each segment costs the engine a pass, parts are short."""
    return (Segment("\n".join(p.text for p in parts), where),) if parts else ()


def _line_starts(parts: Sequence[Segment]) -> list[int]:
    starts, at = [], 0
    for part in parts:
        starts.append(at)
        at += len(part.text) + 1
    return starts


def _split_lines(new: str | None, parts: Sequence[Segment]) -> list[str]:
    """A joined segment's new text, back into its parts; a redaction that changed the lines cannot go back."""
    if new is None:
        return [p.text for p in parts]
    lines = new.split("\n")
    if len(lines) != len(parts):
        raise NotRewritable("a redaction spans parts of the URL or headers")
    return lines


# Lower-case protocol words (``application/json``, ``python``, ``keep-alive``) with at most four digits.
_PLAIN_WORD = re.compile(r"^(?!(?:\D*\d){5})[a-z][a-z0-9_.:/+,;=*\-]{0,99}$")
# Page numbers, counts, timeouts; a letter alone; a word of letters and digits (``v1``, ``x64``):
# no value alone, but maybe part of one beside another piece (f | 123456784, f1234 | 56784).
_SHORT_NUMBER = re.compile(r"^\d{1,4}$")
_LETTER_OR_WORD_WITH_DIGIT = re.compile(r"^[a-z]$|^[a-z][a-z\-]*\d[a-z0-9\-]*$")


def _plain(text: str) -> bool:
    return bool(_PLAIN_WORD.match(text)) or is_technical(None, text)


class _Shape(enum.Enum):
    """What a URL part or header value looks like, which decides whether it is read."""

    TEXT = "text"            # anything but a protocol word: always read
    FRAGMENT = "fragment"    # ``2``, ``600``, ``f``, ``v1``, ``f1234``: read beside other pieces
    WORD = "word"            # a protocol word (``python``) or a technical string (UUID, hash): never read


def _shape(text: str, value: bool = True) -> _Shape:
    """``value``: a query or header value, where a request's data goes. A path step or a query key is
    the API's own word (``/v1/``, ``?q=``): read before a page number and a count it makes an ID's shape
    (v1 | 1000 | 2024 reads v110002024), and a letter alone would stand between two values' pieces
    (``?a=F12345&b=6784``). There only numbers are fragments."""
    # The engine reads the parts a line each; its delimited reading finds a value on its own lines
    # whatever the lines around it hold (``recognizers.normalise.Normalised.delimited``), so a word
    # read before a split number (x64 | 0912 | 345 | 678) does not hide it.
    if _SHORT_NUMBER.match(text):
        return _Shape.FRAGMENT
    if _plain(text):
        piece = value and _LETTER_OR_WORD_WITH_DIGIT.match(text)
        return _Shape.FRAGMENT if piece else _Shape.WORD
    return _Shape.TEXT


Slot = TypeVar("Slot")
#: A URL part or header value: its segment, where it sits in the request, and its shape.
Piece = tuple[Segment, Slot, _Shape]


def _read(pieces: Sequence[Piece[Slot]], beside: bool) -> tuple[tuple[Segment, ...], tuple[Slot, ...]]:
    """The pieces the engine reads: text always, fragments only ``beside`` other pieces.

    Alone, a page number or a ``v1`` holds no value. Beside another piece it may be part of one
    (F12345 | 6784, f | 123456784, 0912 | 345 | 678): read in the joined segment, the engine sees
    the value whole.
    """
    kept = [(segment, slot) for segment, slot, shape in pieces
            if shape is _Shape.TEXT or (beside and shape is _Shape.FRAGMENT)]
    return tuple(s for s, _ in kept), tuple(slot for _, slot in kept)


def _split_path(path: str) -> tuple[list[str], list[tuple[str, str]], str]:
    base, _, fragment = path.partition("#")
    path_part, _, query = base.partition("?")
    pairs = [(k, v) for k, _, v in (p.partition("=") for p in query.split("&") if p)]
    return path_part.split("/"), pairs, fragment


def _url_pieces(path: str) -> list[Piece[tuple[str, int]]]:
    """Path segments, query keys and values, percent-decoded: ``?q=…`` is how prefill features send text."""
    steps, pairs, _ = _split_path(path)
    pieces: list[Piece[tuple[str, int]]] = []
    for i, step in enumerate(steps):
        text = unquote(step)
        pieces.append((Segment(text, f"url path[{i}]"), ("path", i), _shape(text, value=False)))
    for i, (key, value) in enumerate(pairs):
        for kind, raw in (("query-key", key), ("query-value", value)):
            text = unquote_plus(raw)
            found = embedded.embedded_text(text) if kind == "query-value" else None
            if found is not None:  # base64 of a document or compressed text: its text, never rewritten
                segment = Segment(found[1], f"url {kind}[{i}]({found[0]})")
                pieces.append((segment, ("query-file", i), _Shape.TEXT))
            else:
                shape = _shape(text, value=kind == "query-value")
                pieces.append((Segment(text, f"url {kind}[{i}]"), (kind, i), shape))
    return pieces


def _header_pieces(headers: Sequence[tuple[str, str]]) -> list[Piece[int]]:
    """Every header value but credentials and framing; percent-encoded text is text."""
    return [(Segment(unquote(value), f"header {name.lower()}"), i, _shape(value))
            for i, (name, value) in enumerate(headers)
            if name.lower() not in TECHNICAL_HEADERS and not name.startswith(":")]


# ---------------------------------------------------------------- what leaves

@dataclass(frozen=True)
class Outgoing:
    """The request as it may leave: the path, the header fields and the body (only inspected content)."""

    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    body_changed: bool


def outgoing(fmt: RequestFormat, request: Request, seen: Inspection, new_texts: Sequence[str]) -> Outgoing:
    """Write ``new_texts`` (one per segment of ``seen``) back; unchanged parts keep their original bytes.

    The reason header is for the audit trail only and never leaves. A body that cannot be rewritten
    raises :class:`NotRewritable` (the caller blocks instead).
    """
    per_piece = seen.per_piece(new_texts)
    n_body = len(seen.parsed.all_segments)
    body_texts = per_piece[:n_body]
    url_new = per_piece[len(seen.parsed.segments) + seen.url_piece] if seen.url_parts else None
    header_new = per_piece[len(seen.parsed.segments) + seen.header_piece] if seen.header_parts else None
    url_texts = _split_lines(url_new, seen.url_parts)
    header_texts = _split_lines(header_new, seen.header_parts)
    body_changed = any(new != old.text
                       for new, old in zip(body_texts, seen.parsed.all_segments, strict=True))
    body = fmt.rewrite(seen.parsed, body_texts) if body_changed else request.body
    path = _rewritten_path(request.path, seen, url_texts)
    headers = list(request.headers)
    for slot, new, old in zip(seen.header_slots, header_texts, seen.header_parts, strict=True):
        if new != old.text:
            name, value = headers[slot]
            headers[slot] = (name, quote(new, safe=_HEADER_SAFE) if unquote(value) != value else new)
    headers = [(k, v) for k, v in headers if k.lower() != REASON_HEADER]
    return Outgoing(path, tuple(headers), body, body_changed)


def _rewritten_path(path: str, seen: Inspection, new_texts: Sequence[str]) -> str:
    changes = [(slot, new) for slot, new, old
               in zip(seen.url_slots, new_texts, seen.url_parts, strict=True) if new != old.text]
    if not changes:
        return path
    steps, pairs, fragment = _split_path(path)
    for (kind, i), new in changes:
        if kind == "path":
            steps[i] = quote(new, safe="")
        elif kind == "query-key":
            pairs[i] = (quote_plus(new), pairs[i][1])
        elif kind == "query-file":
            raise NotRewritable("a file in the URL cannot be rewritten; block it instead")
        else:
            pairs[i] = (pairs[i][0], quote_plus(new))
    out = "/".join(steps)
    if pairs or "?" in path:
        out += "?" + "&".join(f"{k}={v}" for k, v in pairs)
    return out + (f"#{fragment}" if fragment else "")


# ---------------------------------------------------------------- the stated reason (查詢事由)

def stated_reason(request: Request, seen: Inspection, found: Sequence[FoundAt], confirmed: str = "") -> str:
    """The user's 查詢事由, as the event keeps it (every value the policy detects in it masked).

    From the confirm form, else the X-Guard-Reason header (percent-encoded by browsers; it is one of
    the inspected header segments), else a 「查詢事由：…」 line of the prompt.
    """
    if confirmed:
        return confirmed[:200]
    texts = seen.texts
    index, offset = seen.locate(seen.header_piece)
    starts = _line_starts(seen.header_parts)
    for part, slot, start in zip(seen.header_parts, seen.header_slots, starts, strict=True):
        is_reason = request.headers[slot][0].lower() == REASON_HEADER
        if is_reason and len(part.text.strip()) >= MIN_REASON_CHARS:
            at = offset + start
            return _masked(texts, found, index, at, at + len(part.text))[:200]
    for index, text in enumerate(texts[:len(seen.parsed.segments)]):  # the prompt texts
        match = REASON_IN_TEXT.search(text)
        if match:
            return _masked(texts, found, index, match.start(1), match.end(1))
    return ""


def _masked(texts: Sequence[str], found: Sequence[FoundAt], index: int, start: int, end: int) -> str:
    return mask_text(texts[index], [f for f in found if f.segment == index])[start:end].strip()


def without_reason_lines(texts: Sequence[str], n_body: int) -> list[str]:
    """(``n_body``: how many of ``texts`` are prompt texts, where the line is looked for.)"""
    """Body texts without the 「查詢事由：…」 line: the reason is for the audit trail, not the service."""
    return [_REASON_LINE.sub("", t) if i < n_body else t for i, t in enumerate(texts)]


# ---------------------------------------------------------------- the path an event stores

def event_path(path: str, seen: Inspection | None = None, found: Sequence[FoundAt] = ()) -> str:
    """The request path (no query) as events keep it: detected values masked, never raw.

    Before inspection (or when it failed) every path segment that is not plainly technical or
    vocabulary is masked whole, since what it holds is unknown.
    """
    steps = path.split("?", 1)[0].split("#", 1)[0].split("/")
    if seen is None:
        return "/".join(s if _PLAIN_STEP.match(s) else mask_value("URL_PATH", unquote(s)) for s in steps)
    if not seen.url_parts:
        return "/".join(steps)
    index, offset = seen.locate(seen.url_piece)
    url = seen.url_segments[0].text
    here = [replace(f, start=f.start - offset, end=f.end - offset) for f in found
            if f.segment == index and f.start < offset + len(url) and f.end > offset]
    if here:
        here = [replace(f, start=max(f.start, 0), end=min(f.end, len(url))) for f in here]
        masked = mask_text(url, here)
        for (kind, i), part, start in zip(seen.url_slots, seen.url_parts, _line_starts(seen.url_parts),
                                          strict=True):
            if kind == "path" and masked[start:start + len(part.text)] != part.text:
                steps[i] = quote(masked[start:start + len(part.text)], safe="*○")
    return "/".join(steps)


# A path step kept as it is in an event before inspection: identifiers of the API, no long digit runs.
_PLAIN_STEP = re.compile(r"^(?!.*\d{5})[A-Za-z0-9_.:\-]*$")
