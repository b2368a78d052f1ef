"""Tables written as text (tab-, pipe- or comma-separated, or columns of spaces): the header of a cell.

A value in a column headed 出生年月日 or 帳號 is that kind of value even with no word beside it. A
table is a block of lines (no blank line between) that split into the same number of cells; its
first line is the header.
"""

from __future__ import annotations

import re

_SEPARATORS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\t"), re.compile(r"\s*\|\s*"), re.compile(r"[,，]"), re.compile(r" {2,}"),
)
MAX_LINES_UP = 200


def _cells(line: str, separator: re.Pattern[str]) -> list[tuple[int, int]]:
    """(start, end) of each cell of ``line``, a markdown table's outer pipes ignored."""
    spans, start = [], 0
    for m in separator.finditer(line):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(line)))
    return [(s, e) for s, e in spans if not (s == e and (s == 0 or e == len(line)))]


def _lines_before(text: str, line_start: int) -> list[str]:
    """The (at most ``MAX_LINES_UP``) lines before the line starting at ``line_start``, in order.

    Found backwards from the line, not by splitting everything before it: a long paste has many
    values, and splitting the text up to each of them made the search quadratic.
    """
    lines: list[str] = []
    end = line_start - 1  # the line break that ends the line above
    while end >= 0 and len(lines) < MAX_LINES_UP:
        start = text.rfind("\n", 0, end) + 1
        lines.append(text[start:end])
        end = start - 1
    lines.reverse()
    return lines


def column_header(text: str, pos: int, words: tuple[str, ...]) -> str | None:
    """The header cell of the column holding ``text[pos]`` when it contains one of ``words``."""
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    line = text[line_start:line_end if line_end >= 0 else len(text)]
    lines_above: list[str] | None = None  # read only for a line that splits into cells (most do not)
    for separator in _SEPARATORS:
        cells = _cells(line, separator)
        if len(cells) < 2:
            continue
        index = next((i for i, (s, e) in enumerate(cells) if s <= pos - line_start < max(e, s + 1)), None)
        if index is None:
            continue
        if lines_above is None:
            lines_above = _lines_before(text, line_start)
        if not lines_above:
            return None
        header = None
        for above in reversed(lines_above):
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
