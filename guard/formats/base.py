"""Shared types of the request formats: segments, parsed requests, native replies and the error tree."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from guard.notice import BlockNotice


class GuardFormatError(Exception):
    """Base of every error raised by ``guard.formats``; messages never contain request content."""


class FormatError(GuardFormatError):
    """The body cannot be decoded as the expected format; the caller fails closed."""


class AmbiguousRequest(FormatError):
    """A body that parsers may read differently (duplicate JSON keys, NaN): blocked, never guessed at."""


class UnreadableContent(GuardFormatError):
    """An uploaded file whose text cannot be read (encrypted, scanned, unsupported); policy decides."""


class NotRewritable(GuardFormatError):
    """The request holds content that cannot be rewritten in place (e.g. a DOCX upload); block instead."""


class ContentEncodingError(GuardFormatError):
    """A Content-Encoding that is unknown, or a compressed body that is corrupt."""


class BodyTooLarge(GuardFormatError):
    """A (decompressed) body or archive member exceeds the configured limit."""


class UnknownFormat(GuardFormatError):
    """No request format is registered under that api name."""


@dataclass(frozen=True)
class Segment:
    """A user-visible string of a request and where it sits (for events, never for values)."""

    text: str
    where: str


Writer = Callable[[Sequence[str]], bytes]


@dataclass(frozen=True)
class ParsedRequest:
    """The segments of one request body, plus what is needed to write replacements back.

    ``segments`` are what the service format selected (the user-visible texts); ``extra`` are every
    other string and the object keys, found by the generic walk so that nothing in the body goes
    unread. ``uninspected`` names places whose content could not be read as text (images, inline
    binary files): the caller applies the policy for unreadable content to them.
    """

    format: str
    body: bytes
    segments: tuple[Segment, ...]
    uninspected: tuple[str, ...] = ()
    writer: Writer | None = field(default=None, repr=False, compare=False)
    extra: tuple[Segment, ...] = ()

    @property
    def texts(self) -> tuple[str, ...]:
        return tuple(s.text for s in self.segments)

    @property
    def all_segments(self) -> tuple[Segment, ...]:
        """Everything inspected: the format's selection, then the rest of the body."""
        return self.segments + self.extra


@dataclass(frozen=True)
class NativeResponse:
    """A reply in the client's own shape, built without contacting the service."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class Extracts(Protocol):
    """What reads a body into segments: a request format, or a reader of one WebSocket message."""

    @property
    def name(self) -> str: ...

    def extract(self, body: bytes, content_type: str, path: str) -> ParsedRequest: ...


class RequestFormat(Protocol):
    """One service's request format: pure functions over bytes."""

    name: str

    def extract(self, body: bytes, content_type: str, path: str) -> ParsedRequest: ...

    def rewrite(self, parsed: ParsedRequest, new_texts: Sequence[str]) -> bytes: ...

    def block_response(self, notice: BlockNotice, streaming: bool) -> NativeResponse: ...


def rewrite_parsed(parsed: ParsedRequest, new_texts: Sequence[str]) -> bytes:
    """Write ``new_texts`` back in place of the segments (or of all segments, ``extra`` included);
    the original bytes when nothing changed."""
    everything = parsed.all_segments
    if len(new_texts) == len(parsed.segments):
        new_texts = [*new_texts, *(s.text for s in parsed.extra)]
    if len(new_texts) != len(everything):
        raise ValueError(f"expected {len(parsed.segments)} texts, got {len(new_texts)}")
    if all(new == seg.text for new, seg in zip(new_texts, everything, strict=True)):
        return parsed.body
    if parsed.writer is None:
        raise NotRewritable(f"{parsed.format} request cannot be rewritten")
    return parsed.writer(new_texts)


JSON_HEADERS = (("content-type", "application/json; charset=utf-8"), ("cache-control", "no-store"))
SSE_HEADERS = (("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache"))


def media_type(content_type: str) -> str:
    """The lower-cased media type without parameters: ``"application/json"``."""
    return content_type.split(";", 1)[0].strip().lower()
