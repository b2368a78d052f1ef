"""DATE_OF_BIRTH: ROC and Gregorian dates, only with birth context or under a birth-date column."""

from __future__ import annotations

import pytest

from recognizers.date_of_birth import DateOfBirthRecognizer
from tests.helpers import found

REC = DateOfBirthRecognizer()


@pytest.mark.parametrize(("text", "expected"), [
    # ROC forms; 民國 is inside the span
    ("當事人民國74年5月3日出生，請計算其年齡。", ["民國74年5月3日"]),
    ("出生年月日：074.05.03", ["074.05.03"]),
    ("出生日期 0740503，性別男", ["0740503"]),
    ("他生於七十四年五月三日，籍貫臺南。", ["七十四年五月三日"]),
    ("王小明，74年5月3日生，現年40歲。", ["74年5月3日"]),
    ("生日：民國８８年１２月３１日", ["民國８８年１２月３１日"]),
    # Gregorian forms; 西元 is inside the span
    ("出生於西元1985年5月3日的申請人", ["西元1985年5月3日"]),
    ("生日 1985/05/03，血型 B", ["1985/05/03"]),
    ("DOB: May 3, 1985", ["May 3, 1985"]),
    ("She was born on 3 March 1990 in Tainan.", ["3 March 1990"]),
    ("Date of birth: 19850503", ["19850503"]),
    # a column headed so (tab-separated and markdown tables)
    ("姓名\t出生年月日\t電話\n王小明\t74.05.03\t0912345678\n陳美玲\t80.11.20\t0922333444",
     ["74.05.03", "80.11.20"]),
    ("| 姓名 | 生日 | 到職日 |\n|---|---|---|\n| 王小明 | 1985-05-03 | 2010-07-01 |", ["1985-05-03"]),
    # traps: dates that are not birth dates
    ("申請日期：民國113年5月3日，請於期限內補件。", []),
    ("案件發生於民國113年5月3日晚間。", []),
    ("他出生於1985年，2010年5月3日結婚。", []),
    ("本辦法自113年5月3日生效。", []),
    ("出生率在2023年12月31日的統計", []),
    ("出生地：臺南市，2010年5月3日遷入", []),
    ("生日：民國74年13月40日", []),
    ("| 姓名 | 到職日 |\n|---|---|\n| 王小明 | 2010-07-01 |", []),
])
def test_date_of_birth(text: str, expected: list[str]) -> None:
    assert found(REC, text) == expected
