"""recognizers.table: the header of the column a position stands in."""

from __future__ import annotations

import pytest

from recognizers.table import MAX_LINES_UP, _lines_up, cells_under, column_header

WORDS = ("生日", "出生")


@pytest.mark.parametrize(("text", "value", "expected"), [
    ("姓名\t生日\n王小明\t74.05.03", "74.05.03", "生日"),
    ("姓名,出生年月日,電話\n王小明,74.05.03,0912", "74.05.03", "出生年月日"),
    ("| 姓名 | 生日 |\n|---|---|\n| 王 | 1985-05-03 |", "1985-05-03", "生日"),
    ("姓名      生日        電話\n王小明    1985-05-03  0912", "1985-05-03", "生日"),
    # the value's column is headed otherwise; a blank line ends a table; no table at all
    ("生日\t到職日\n1985-05-03\t2010-07-01", "2010-07-01", None),
    ("姓名\t生日\n\n王小明\t74.05.03", "74.05.03", None),
    ("他的生日是 74.05.03", "74.05.03", None),
])
def test_column_header(text: str, value: str, expected: str | None) -> None:
    assert column_header(text, text.index(value), WORDS) == expected


@pytest.mark.parametrize("text", [
    "姓名\t生日\n王小明\t74.05.03",
    "\n\n姓名\t生日\n\n王小明\t74.05.03\n",
    "一行\n" * 300 + "王小明\t74.05.03",
    "| 姓名 | 生日 |\n|---|---|\n| 王 | 1985-05-03 |",
])
def test_lines_above_are_the_lines_splitting_would_give(text: str) -> None:
    """The lines above each line, found backwards, are those of splitting the text before it."""
    for line_start in [0, *(i + 1 for i, ch in enumerate(text) if ch == "\n")]:
        split = text[:line_start].split("\n")[:-1][-MAX_LINES_UP:]
        assert list(_lines_up(text, line_start))[::-1] == split


@pytest.mark.parametrize(("text", "expected"), [
    ("姓名\t生日\n王小明\t74.05.03\n兀育成\t75.01.02", [("王小明", "姓名"), ("兀育成", "姓名")]),
    ("| 編號 | 中文姓名 |\n|---|---|\n| 1 | 瓦旦 |", [("瓦旦", "中文姓名")]),
    # a row of another width, or a blank line, ends the table; a header alone has no cells
    ("姓名,電話\n王小明,0912\n這一行沒有逗號\n陳大華,0922", [("王小明", "姓名")]),
    ("姓名,電話\n王小明,0912\n\n陳大華,0922", [("王小明", "姓名")]),
    ("姓名,電話", []),
    ("單位,名稱\n衛福部,長照司", []),
    # commas also join clauses: a sentence is no header and no row; one row of words alone is no record
    ("我們需要姓名，以及電話。\n王小明，0912", []),
    ("請提供姓名，電話\n好的，沒問題", []),
    ("姓名,電話\n王小明,0912\n好的，謝謝。", [("王小明", "姓名")]),
    ("姓名\t單位\n王小明\t衛福部", [("王小明", "姓名")]),
    ("姓名,單位\n王小明,衛福部\n陳大華,內政部", [("王小明", "姓名"), ("陳大華", "姓名")]),
])
def test_cells_under(text: str, expected: list[tuple[str, str]]) -> None:
    assert [(text[s:e], header) for s, e, header in cells_under(text, ("姓名",))] == expected


def test_cells_under_reads_every_row_of_a_long_table() -> None:
    text = "姓名,電話\n" + "\n".join(f"王{i:05d},0912" for i in range(MAX_LINES_UP * 5))
    assert len(list(cells_under(text, ("姓名",)))) == MAX_LINES_UP * 5
