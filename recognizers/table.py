"""Tables written as text (tab-, pipe- or comma-separated, or columns of spaces): the header of a cell.

A value in a column headed 出生年月日 or 帳號 is that kind of value even with no word beside it. A
table is a block of lines (no blank line between) that split into the same number of cells; its
first line is the header.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_COMMAS = re.compile(r"[,，]")
_SEPARATORS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\t"), re.compile(r"\s*\|\s*"), _COMMAS, re.compile(r" {2,}"),
)
# Commas also join clauses: a comma-separated line that ends a sentence is prose, and a single comma
# row under a header needs a value of a record (a digit or a Latin letter) to be one.
_SENTENCE_END = re.compile(r"[。！？!?；]")
_DATA_CHAR = re.compile(r"[0-9A-Za-z@]")
MAX_LINES_UP = 200


def _cells(line: str, separator: re.Pattern[str]) -> list[tuple[int, int]]:
    """(start, end) of each cell of ``line``, a markdown table's outer pipes ignored."""
    spans, start = [], 0
    for m in separator.finditer(line):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(line)))
    return [(s, e) for s, e in spans if not (s == e and (s == 0 or e == len(line)))]


def _lines_up(text: str, line_start: int) -> Iterator[str]:
    """The (at most ``MAX_LINES_UP``) lines above the line starting at ``line_start``, nearest first.

    Found backwards from the line, one at a time, not by splitting everything before it: a long
    paste has many values, and a header is found a line or two up (or not at all).
    """
    end = line_start - 1  # the line break that ends the line above
    for _ in range(MAX_LINES_UP):
        if end < 0:
            return
        start = text.rfind("\n", 0, end) + 1
        yield text[start:end]
        end = start - 1


def column_header(text: str, pos: int, words: tuple[str, ...]) -> str | None:
    """The header cell of the column holding ``text[pos]`` when it contains one of ``words``."""
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    line = text[line_start:line_end if line_end >= 0 else len(text)]
    if line_start == 0:
        return None  # no line above: no header
    for separator in _SEPARATORS:
        cells = _cells(line, separator)
        if len(cells) < 2:
            continue
        index = next((i for i, (s, e) in enumerate(cells) if s <= pos - line_start < max(e, s + 1)), None)
        if index is None:
            continue
        header = None
        for above in _lines_up(text, line_start):
            if not above.strip():
                break
            if re.fullmatch(r"[\s|:\-]+", above):  # a markdown rule line |---|---|
                continue
            above_cells = _cells(above, separator)
            if len(above_cells) != len(cells):
                break
            header = above[above_cells[index][0]:above_cells[index][1]]
        if header is not None:
            lowered = header.lower()
            for word in words:
                if word.lower() in lowered:
                    return header.strip()
            return None
    return None


def cells_under(text: str, words: tuple[str, ...]) -> Iterator[tuple[int, int, str]]:
    """(start, end, header) of every cell in a column whose header cell contains one of ``words``.

    One pass over the lines: a line with such a header cell starts a table, and the lines below it that
    split into as many cells (a markdown rule line skipped) are its rows, however many there are.
    """
    if not any(word in text for word in words):
        return  # no header cell can hold one (most texts): no line is split
    lines: list[tuple[int, str]] = []
    at = 0
    for line in text.split("\n"):
        lines.append((at, line))
        at += len(line) + 1
    i = 0
    while i < len(lines):
        table = _header_columns(lines[i][1], words)
        if table is None:
            i += 1
            continue
        separator, width, columns = table
        commas = separator is _COMMAS
        i += 1
        rows: list[tuple[int, str, list[tuple[int, int]]]] = []
        while i < len(lines):
            row_start, row = lines[i]
            if re.fullmatch(r"[\s|:\-]+", row) and row.strip():
                i += 1
                continue
            cells = _cells(row, separator)
            if not row.strip() or len(cells) != width or (commas and _SENTENCE_END.search(row)):
                break
            rows.append((row_start, row, cells))
            i += 1
        if commas and len(rows) == 1 and not _DATA_CHAR.search(rows[0][1]):
            continue  # one line of commas under another: two sentences (好的，謝謝), not a record
        for row_start, _row, cells in rows:
            for index, header in columns:
                start, end = cells[index]
                yield row_start + start, row_start + end, header


def _header_columns(line: str,
                    words: tuple[str, ...]) -> tuple[re.Pattern[str], int, list[tuple[int, str]]] | None:
    """(separator, number of cells, [(index, header)]) of a header line, a cell of which holds one of
    ``words``."""
    if not any(word in line for word in words):
        return None
    for separator in _SEPARATORS:
        if separator is _COMMAS and _SENTENCE_END.search(line):
            continue  # 我們需要姓名，以及電話。 is a sentence, not a header
        cells = _cells(line, separator)
        if len(cells) < 2:
            continue
        columns = [(k, line[s:e].strip()) for k, (s, e) in enumerate(cells)
                   if any(word.lower() in line[s:e].lower() for word in words)]
        if columns:
            return separator, len(cells), columns
    return None
