"""Content-Encoding for inspection: decode gzip, deflate, br and zstd bodies (and encode them back).

brotli and zstandard are installed with mitmproxy. Decoding is bounded by ``max_size`` so a small
compressed body cannot expand without limit; a corrupt body raises :class:`ContentEncodingError`.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib

import brotli
import zstandard

from guard.formats.base import BodyTooLarge, ContentEncodingError

DEFAULT_MAX_SIZE = 32 * 1024 * 1024
_CHUNK = 64 * 1024


def encodings(content_encoding: str | None) -> list[str]:
    """``"gzip, br"`` → ``["gzip", "br"]`` in the order they were applied; identity dropped."""
    if not content_encoding:
        return []
    names = (e.strip().lower() for e in content_encoding.split(","))
    return [e for e in names if e not in ("", "identity")]


def _zlib(data: bytes, wbits: int, max_size: int) -> bytes:
    d = zlib.decompressobj(wbits)
    out = d.decompress(data, max_size + 1)
    if len(out) > max_size or d.unconsumed_tail:
        raise BodyTooLarge("decompressed body exceeds the size limit")
    out += d.flush()
    if not d.eof:
        raise ContentEncodingError("truncated compressed body")
    return out


def _gzip(data: bytes, max_size: int) -> bytes:
    out = bytearray()
    while data:  # concatenated gzip members are legal
        d = zlib.decompressobj(31)
        out += d.decompress(data, max_size + 1 - len(out))
        if len(out) > max_size or d.unconsumed_tail:
            raise BodyTooLarge("decompressed body exceeds the size limit")
        out += d.flush()
        if not d.eof:
            raise ContentEncodingError("truncated gzip body")
        data = d.unused_data.lstrip(b"\x00")
    return bytes(out)


def _deflate(data: bytes, max_size: int) -> bytes:
    try:
        return _zlib(data, 15, max_size)  # RFC 9110 "deflate" is zlib-wrapped
    except zlib.error:
        return _zlib(data, -15, max_size)  # some servers send raw deflate


def _brotli(data: bytes, max_size: int) -> bytes:
    d = brotli.Decompressor()
    out = bytearray()
    for i in range(0, len(data), 1024):  # feed small pieces to notice an explosion early
        out += d.process(data[i:i + 1024])
        if len(out) > max_size:
            raise BodyTooLarge("decompressed body exceeds the size limit")
    if not d.is_finished():
        raise ContentEncodingError("truncated br body")
    return bytes(out)


def _zstd(data: bytes, max_size: int) -> bytes:
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    out = bytearray()
    while True:
        chunk = reader.read(_CHUNK)
        if not chunk:
            break
        out += chunk
        if len(out) > max_size:
            raise BodyTooLarge("decompressed body exceeds the size limit")
    if data and not out and not data.startswith(b"\x28\xb5\x2f\xfd"):
        raise ContentEncodingError("not a zstd body")
    return bytes(out)


def _stream(d: bz2.BZ2Decompressor | lzma.LZMADecompressor, data: bytes, max_size: int, name: str) -> bytes:
    """bzip2 or xz through a decompressor that stops at ``max_size`` (a bomb is refused, not inflated)."""
    out = d.decompress(data, max_size + 1)
    if len(out) > max_size or (not d.needs_input and not d.eof):
        raise BodyTooLarge("decompressed body exceeds the size limit")
    if not d.eof:
        raise ContentEncodingError(f"truncated {name} data")
    return out


def _bzip2(data: bytes, max_size: int) -> bytes:
    return _stream(bz2.BZ2Decompressor(), data, max_size, "bzip2")


def _xz(data: bytes, max_size: int) -> bytes:
    return _stream(lzma.LZMADecompressor(), data, max_size, "xz")


_DECODERS = {"gzip": _gzip, "x-gzip": _gzip, "deflate": _deflate, "br": _brotli, "zstd": _zstd}


def decode_body(body: bytes, content_encoding: str | None, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
    """The body with every Content-Encoding removed (applied last is removed first)."""
    for enc in reversed(encodings(content_encoding)):
        decoder = _DECODERS.get(enc)
        if decoder is None:
            raise ContentEncodingError(f"unsupported content-encoding {enc!r}")
        try:
            body = decoder(body, max_size)
        except (ContentEncodingError, BodyTooLarge):
            raise
        except (zlib.error, brotli.error, zstandard.ZstdError, EOFError, OSError, ValueError):
            raise ContentEncodingError(f"corrupt {enc} body") from None
    return body


#: Compressed data by format (not a Content-Encoding name): what ``decompress`` undoes.
_FORMATS = {"gzip": _gzip, "zlib": lambda data, max_size: _zlib(data, 15, max_size),
            "bzip2": _bzip2, "xz": _xz}


def decompress(data: bytes, kind: str, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
    """``data`` compressed as ``kind`` (gzip, zlib, bzip2, xz), inflated to at most ``max_size`` bytes."""
    try:
        return _FORMATS[kind](data, max_size)
    except (ContentEncodingError, BodyTooLarge):
        raise
    except (zlib.error, EOFError, OSError, ValueError, lzma.LZMAError):
        raise ContentEncodingError(f"corrupt {kind} data") from None


def encode_body(body: bytes, content_encoding: str | None) -> bytes:
    """Encode ``body`` again with the same Content-Encoding (after a rewrite)."""
    for enc in encodings(content_encoding):
        if enc in ("gzip", "x-gzip"):
            body = gzip.compress(body, mtime=0)
        elif enc == "deflate":
            body = zlib.compress(body)
        elif enc == "br":
            body = brotli.compress(body)
        elif enc == "zstd":
            body = zstandard.ZstdCompressor().compress(body)
        else:
            raise ContentEncodingError(f"unsupported content-encoding {enc!r}")
    return body
