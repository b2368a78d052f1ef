"""multipart/form-data bodies (RFC 7578, RFC 2046) split into parts with exact byte ranges.

The standard library's ``email`` package reads the headers and every parameter (quoting,
``xboundary=`` versus ``boundary=``, RFC 2231 ``filename*``) and decodes transfer encodings; the byte
ranges needed to rewrite a part in place come from a strict delimiter scan. The split is unambiguous
by construction or refused: every occurrence of the boundary string must be a delimiter line (a
bare-LF delimiter hidden in a part, or one in the preamble, is a part to some parsers and data to
others), and part headers must end their lines in CRLF (a bare ``\n\n`` ends the headers early for a
lenient parser). A refused body is an event and is never forwarded.
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import email.utils
from dataclasses import dataclass

from guard.formats.base import FormatError

MAX_PARTS = 1000
_HEADER_END = b"\r\n\r\n"
_PADDING = b" \t"  # transport padding allowed after a delimiter (RFC 2046 5.1.1)


@dataclass(frozen=True)
class Span:
    """A byte range of the body."""

    start: int
    end: int


@dataclass(frozen=True)
class Part:
    """One part: its decoded field name and file name, its headers and data as byte ranges.

    ``payload`` is the data as a server decodes it: equal to ``body[data]`` unless the part declares
    a Content-Transfer-Encoding (base64, quoted-printable), which some servers still honour.
    """

    name: str
    filename: str | None
    content_type: str
    headers: Span
    data: Span
    payload: bytes

    @property
    def encoded(self) -> bool:
        return self.data.end - self.data.start != len(self.payload)


@dataclass(frozen=True)
class Multipart:
    """The parts, and the text before the first and after the last delimiter (servers ignore it;
    the guard still reads it, since it travels to the service)."""

    parts: tuple[Part, ...]
    preamble: Span
    epilogue: Span


def _header_message(content_type: str) -> email.message.Message:
    msg = email.message.Message()
    msg["content-type"] = content_type
    return msg


def boundary_of(content_type: str) -> bytes:
    """The ``boundary`` parameter (exactly one; ``xboundary`` and the like are other parameters)."""
    msg = _header_message(content_type)
    keys = [key.lower() for key, _ in (msg.get_params() or [])[1:]]
    if keys.count("boundary") != 1:
        raise FormatError("multipart body needs exactly one boundary parameter")
    value = email.utils.collapse_rfc2231_value(msg.get_param("boundary") or "")
    if not 0 < len(value) <= 200 or not value.isascii() or any(c in value for c in "\r\n"):
        raise FormatError("multipart boundary is not a valid boundary")
    return value.encode("ascii")


def _decoded(headers: bytes, data: bytes) -> bytes:
    """A part's data after its Content-Transfer-Encoding (base64, quoted-printable), as the standard
    library decodes it; RFC 7578 deprecates these, yet a server may still honour them."""
    message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(headers + _HEADER_END + data)
    payload = message.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raise FormatError("multipart part data cannot be decoded")
    return payload


def _part_headers(raw: bytes) -> email.message.Message:
    """A part's headers as text: browsers send file names as raw UTF-8, which RFC 7578 allows."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("multipart part headers are not UTF-8") from None
    return email.parser.HeaderParser(policy=email.policy.compat32).parsestr(text + "\r\n\r\n")


def _delimiter_line_end(body: bytes, pos: int, delimiter: bytes) -> tuple[int, bool]:
    """Where the delimiter line at ``pos`` ends, and whether it is the closing one."""
    after = pos + len(delimiter)
    if body[after:after + 2] == b"--":
        return after + 2, True
    while body[after:after + 1] and body[after:after + 1] in _PADDING:
        after += 1
    if body[after:after + 2] != b"\r\n":
        raise FormatError("multipart delimiter line is malformed")
    return after + 2, False


def parse(body: bytes, content_type: str) -> Multipart:
    """Split ``body``; :class:`FormatError` when it is malformed or ambiguous."""
    delimiter = b"--" + boundary_of(content_type)
    if body.startswith(delimiter):
        pos, preamble = 0, Span(0, 0)
    else:
        found = body.find(b"\r\n" + delimiter)
        if found < 0:
            raise FormatError("multipart body without its boundary")
        pos, preamble = found + 2, Span(0, found)
    spans: list[tuple[Span, Span]] = []
    while True:
        line_end, closing = _delimiter_line_end(body, pos, delimiter)
        if closing:
            epilogue = Span(line_end, len(body))
            break
        if len(spans) >= MAX_PARTS:
            raise FormatError("multipart body has too many parts")
        if body[line_end:line_end + 2] == b"\r\n":  # a part without headers
            headers, data_start = Span(line_end, line_end), line_end + 2
        else:
            end = body.find(_HEADER_END, line_end)
            if end < 0:
                raise FormatError("multipart part without the end of its headers")
            headers, data_start = Span(line_end, end), end + 4
        next_delimiter = body.find(b"\r\n" + delimiter, data_start)
        if next_delimiter < 0:
            raise FormatError("multipart part without a closing delimiter")
        spans.append((headers, Span(data_start, next_delimiter)))
        pos = next_delimiter + 2
    # Every occurrence of the boundary must be one of the delimiters read above (a bare-LF delimiter
    # or one inside the preamble would be a part to some parsers and data to others).
    if body.count(delimiter) != len(spans) + 1:
        raise FormatError("multipart boundary appears inside the data")
    parts = []
    for headers, data in spans:
        raw_headers = body[headers.start:headers.end]
        if b"\r" in raw_headers.replace(b"\r\n", b"") or b"\n" in raw_headers.replace(b"\r\n", b""):
            raise FormatError("multipart part headers with a bare line break")
        fields = _part_headers(raw_headers)
        if fields.get_content_maintype() == "multipart":
            raise FormatError("nested multipart part")
        raw = body[data.start:data.end]
        encoding = str(fields.get("content-transfer-encoding", "")).strip().lower()
        name = fields.get_param("name", header="content-disposition")
        parts.append(Part(
            name=email.utils.collapse_rfc2231_value(name) if name else "",
            filename=fields.get_filename(),
            content_type=str(fields.get("content-type", "")),
            headers=headers, data=data,
            payload=raw if encoding in ("", "7bit", "8bit", "binary") else _decoded(raw_headers, raw)))
    return Multipart(tuple(parts), preamble, epilogue)
