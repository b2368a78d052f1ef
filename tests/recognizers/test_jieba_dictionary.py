"""jieba's prefix dictionary from guard's own cache: the same entries as jieba builds, rebuilt when the
cache is stale or damaged, and a directory that cannot be written only costs the rebuild."""

from __future__ import annotations

from pathlib import Path

import jieba
import numpy as np
import pytest

from recognizers import jieba_dictionary
from recognizers.jieba_dictionary import CACHE_FILE


@pytest.fixture(scope="module")
def jiebas_own() -> tuple[dict[str, int], int]:
    """The entries and total jieba's ``gen_pfdict`` builds from its dictionary file."""
    tok = jieba.Tokenizer()
    with tok.get_dict_file() as f:
        freq, total = tok.gen_pfdict(f)
    return freq, total


def _same_as_jiebas(tok: jieba.Tokenizer, own: tuple[dict[str, int], int]) -> None:
    freq, total = own
    assert tok.initialized and tok.total == total
    assert list(tok.FREQ.items()) == list(freq.items())  # same entries, same order


def test_written_then_read_back_as_jieba_builds_it(tmp_path: Path,
                                                   jiebas_own: tuple[dict[str, int], int]) -> None:
    first = jieba_dictionary.tokenizer(tmp_path)
    cache = tmp_path / CACHE_FILE
    written = cache.stat().st_mtime_ns
    second = jieba_dictionary.tokenizer(tmp_path)
    assert cache.stat().st_mtime_ns == written, "the cache was rebuilt instead of read"
    _same_as_jiebas(first, jiebas_own)
    _same_as_jiebas(second, jiebas_own)
    # The tokenizer works as jieba's own (segmentation reads FREQ and total).
    assert list(second.cut("我们在北京天安门广场")) == list(jieba.Tokenizer().cut("我们在北京天安门广场"))
    assert [p.name for p in tmp_path.iterdir()] == [CACHE_FILE]  # no temporary file left behind


@pytest.mark.parametrize("damage", ["truncated", "not an npz", "another source", "words cut short"])
def test_a_damaged_or_stale_cache_is_rebuilt(damage: str, tmp_path: Path,
                                             jiebas_own: tuple[dict[str, int], int]) -> None:
    jieba_dictionary.tokenizer(tmp_path)
    cache = tmp_path / CACHE_FILE
    if damage == "truncated":
        cache.write_bytes(cache.read_bytes()[:100_000])
    elif damage == "not an npz":
        cache.write_bytes(b"\x80\x04 jieba's marshal cache, say")
    else:
        with np.load(cache) as data:
            arrays = {name: data[name] for name in data.files}
        if damage == "another source":
            arrays["source"] = np.array("jieba 0.41; dict.txt 1 bytes, mtime 0")
        else:
            arrays["words"] = arrays["words"][:1000]
        with cache.open("wb") as f:
            np.savez(f, **arrays)
    _same_as_jiebas(jieba_dictionary.tokenizer(tmp_path), jiebas_own)
    with np.load(cache) as data:
        assert len(data["freqs"]) == len(jiebas_own[0])  # replaced by a good cache


def test_a_directory_that_cannot_be_written_still_gives_the_dictionary(
        tmp_path: Path, jiebas_own: tuple[dict[str, int], int], caplog: pytest.LogCaptureFixture) -> None:
    _same_as_jiebas(jieba_dictionary.tokenizer(tmp_path / "absent"), jiebas_own)
    assert "not written" in caplog.text
