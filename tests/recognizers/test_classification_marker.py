"""CLASSIFICATION_MARKER: document markings, not words about secrecy."""

from __future__ import annotations

import pytest

from recognizers.analyzer import analyze, build_analyzer
from recognizers.classification_marker import ClassificationMarkerRecognizer
from tests.helpers import found

REC = ClassificationMarkerRecognizer()


@pytest.mark.parametrize(("text", "expected"), [
    # the 公文 field
    ("密等及解密條件或保密期限：密（本件於公布後解密）\n主旨：檢送計畫，請查照。",
     ["密等及解密條件或保密期限：密（本件於公布後解密）"]),
    ("密等及解密條件或保密期限：機密（保密期限至中華民國120年12月31日）\n主旨：…",
     ["密等及解密條件或保密期限：機密（保密期限至中華民國120年12月31日）"]),
    ("請幫我潤飾：\n密等及解密條件或保密期限：極機密\n受文者：本局各分局",
     ["密等及解密條件或保密期限：極機密"]),
    ("檔號：113/01 保存年限：10年 密等：絕對機密", ["密等：絕對機密"]),
    ("密等：密件", ["密等：密件"]),
    # 普通 is not classified; urgency is not classification
    ("密等及解密條件或保密期限：普通\n主旨：函轉流感疫苗接種事宜。", []),
    ("速別：最速件\n密等：普通", []),
    ("速別：普通件", []),
    # a level alone on a line, or bracketed
    ("請幫我潤飾下面這份公文：\n機密\n受文者：本局各分局", ["機密"]),
    ("【極機密】\n主旨：檢送本局專案稽核計畫。", ["【極機密】"]),
    ("〔密〕\n主旨：人事調動。", ["〔密〕"]),
    ("  絕對機密  \n第1頁", ["絕對機密"]),
    ("密件\n主旨：陳情案處理。", ["密件"]),
    ("（密）\n主旨", ["（密）"]),
    ("「機密」\n本文", ["「機密」"]),
    ("[極機密] 附件請勿外流", ["[極機密]"]),
    ("主旨：【機密】本局人事異動案", ["【機密】"]),
    # with declassification condition and copy number
    ("機密（本件於公布後解密）\n主旨", ["機密（本件於公布後解密）"]),
    ("極機密，保密期限至民國120年12月31日\n正文", ["極機密，保密期限至民國120年12月31日"]),
    ("絕對機密 複製物第3份\n正文", ["絕對機密 複製物第3份"]),
    # English headings
    ("CONFIDENTIAL\nDear all, the budget is attached.", ["CONFIDENTIAL"]),
    ("TOP SECRET//NOFORN\nOperation plan", ["TOP SECRET//NOFORN"]),
    ("[SECRET] Q3 plan", ["[SECRET]"]),
    ("This is a confidential matter, keep it secret.", []),
    ("Top Secret recipe for cookies", []),
    # prose about secrecy is not a marking
    ("請問公務機密和個人資料保護的差別是什麼？", []),
    ("提醒同仁不要洩漏公務機密。", []),
    ("機密文書應由業務承辦人親自撰寫，請翻成英文。", []),
    ("公務員洩漏國防以外應秘密之文書罪", []),
    ("請解釋商業機密與營業秘密的不同。", []),
    ("我的密碼一直被鎖住", []),
    ("我們需要跟廠商保持密切聯繫", []),
    ("這份報告的密度太高了", []),
    ("兩人關係親密", []),
    ("機密和極機密有什麼差別？", []),
    ("什麼是「機密」等級？", []),
    ("公務機\n密維護作為", []),
    ("文件分級由低到高：\n密\n機密\n極機密\n絕對機密\n請說明差別。", []),   # a list of levels
    ("機密\n主旨：人事案\n說明：詳附件\n機密", ["機密", "機密"]),        # top and bottom of a page
    # evasions: spaces, zero-width, full-width brackets, simplified characters
    ("機 密\n受文者", ["機 密"]),
    ("【 極 機 密 】\n主旨", ["【 極 機 密 】"]),
    ("極\u200b機密\n主旨", ["極\u200b機密"]),
    ("密等及解密條件或保密期限：機\u3000密\n主旨", ["密等及解密條件或保密期限：機\u3000密"]),
    ("密等及解密条件或保密期限：机密\n主旨", ["密等及解密条件或保密期限：机密"]),
    ("【绝对机密】\n正文", ["【绝对机密】"]),
    ("\u3000\u3000機密\u3000\u3000\n主旨", ["機密"]),
])
def test_classification_marker(text: str, expected: list[str]) -> None:
    assert found(REC, text) == expected


@pytest.mark.parametrize(("text", "level"), [
    ("密等及解密條件或保密期限：密（本件於公布後解密）", "密"),
    ("密等：密件", "密"),
    ("密件\n", "密"),
    ("機密\n", "機密"),
    ("【極機密】", "極機密"),
    ("絕對機密 複製物第3份\n", "絕對機密"),
    ("【绝对机密】", "絕對機密"),
    ("CONFIDENTIAL\n", "CONFIDENTIAL"),
    ("SECRET\n", "SECRET"),
    ("TOP SECRET\n", "TOP_SECRET"),
])
def test_level_is_reported_in_metadata(text: str, level: str) -> None:
    [result] = analyze(build_analyzer([ClassificationMarkerRecognizer()]), text)
    assert result.recognition_metadata["classification_level"] == level


@pytest.mark.parametrize("text", ["[機密】\n主旨:本署", "〔極機密】\n主旨:加強巡邏。", "【密)\n主旨"])
def test_mismatched_brackets_as_ocr_reads_them_still_mark(text: str) -> None:
    # Tesseract often reads 【 as [: a marking line alone between any brackets is a marking.
    assert found(ClassificationMarkerRecognizer(), text) != []
