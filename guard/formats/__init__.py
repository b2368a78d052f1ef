"""Request formats of AI services: extract user-visible text, write redactions back, answer natively.

Pure code over bytes, strings and dicts; only ``guard.addon`` knows mitmproxy.
"""

from guard.formats.base import (
    AmbiguousRequest,
    BodyTooLarge,
    ContentEncodingError,
    FormatError,
    GuardFormatError,
    NativeResponse,
    NotRewritable,
    ParsedRequest,
    RequestFormat,
    Segment,
    UnknownFormat,
    UnreadableContent,
)
from guard.formats.registry import FORMATS, format_for

__all__ = [
    "FORMATS",
    "AmbiguousRequest",
    "BodyTooLarge",
    "ContentEncodingError",
    "FormatError",
    "GuardFormatError",
    "NativeResponse",
    "NotRewritable",
    "ParsedRequest",
    "RequestFormat",
    "Segment",
    "UnknownFormat",
    "UnreadableContent",
    "format_for",
]
