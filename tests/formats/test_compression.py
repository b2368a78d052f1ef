"""Content-Encoding decoding for inspection."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest
import zstandard

from guard.formats import BodyTooLarge, ContentEncodingError
from guard.formats.compression import decode_body, encode_body

BODY = '{"messages":[{"role":"user","content":"王小明 A123456789"}]}'.encode() * 20


@pytest.mark.parametrize(("encoding", "data"), [
    ("gzip", gzip.compress(BODY)),
    ("x-gzip", gzip.compress(BODY)),
    ("deflate", zlib.compress(BODY)),
    ("deflate", zlib.compress(BODY)[2:-4]),  # raw deflate, as some servers send it
    ("br", brotli.compress(BODY)),
    ("zstd", zstandard.ZstdCompressor().compress(BODY)),
    ("gzip, br", brotli.compress(gzip.compress(BODY))),
    ("identity", BODY),
    ("", BODY),
])
def test_decode(encoding: str, data: bytes) -> None:
    assert decode_body(data, encoding) == BODY


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_round_trip(encoding: str) -> None:
    assert decode_body(encode_body(BODY, encoding), encoding) == BODY


@pytest.mark.parametrize(("encoding", "data"), [
    ("gzip", gzip.compress(BODY)[:-10]),
    ("gzip", b"not gzip at all"),
    ("br", b"\xff\xff\xff"),
    ("zstd", b"\x28\xb5\x2f\xfd\x00garbage"),
    ("deflate", b"\x00\x01\x02"),
    ("compress", b"x"),
])
def test_corrupt_or_unknown(encoding: str, data: bytes) -> None:
    with pytest.raises(ContentEncodingError):
        decode_body(data, encoding)


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd", "deflate"])
def test_decompression_bomb_is_bounded(encoding: str) -> None:
    bomb = encode_body(b"\x00" * (4 * 1024 * 1024), encoding)
    with pytest.raises(BodyTooLarge):
        decode_body(bomb, encoding, max_size=1024 * 1024)
