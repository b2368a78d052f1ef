"""TW_LICENSE_PLATE: every series, with and without hyphens, context, traps and evasions."""

from __future__ import annotations

import pytest

from recognizers.tw_license_plate import TwLicensePlateRecognizer
from tests.helpers import found, spans

REC = TwLicensePlateRecognizer()


@pytest.mark.parametrize(("text", "expected"), [
    # 2012 car form on its own (no I/O, no digit 4): reported without context
    ("請查一下PWX-8002的違規紀錄。", ["PWX-8002"]),
    ("Summarize: the reporter saw KRU-3717 leave the scene.", ["KRU-3717"]),
    ("PWX8002", ["PWX8002"]),
    ("RAA-1235 是哪一家公司的？", ["RAA-1235"]),           # rental
    ("EAA-1235 停在騎樓下", ["EAA-1235"]),                 # electric scooter
    # 2012 car form with context words
    ("車號ABC-1235的車主違規停車。", ["ABC-1235"]),
    ("嫌疑人駕駛MXB5786逃逸。", ["MXB5786"]),
    ("我要查一下SXP5018這台車是不是贓車。", ["SXP5018"]),
    # every other series needs a vehicle word
    ("車主名下車輛ZDR-794已逾期未繳罰鍰。", ["ZDR-794"]),              # 2012 commercial / old motorcycle
    ("車號MM-9136之自小客車與機車擦撞。", ["MM-9136"]),               # 1992 car
    ("車牌 F2-123 的舊車要報廢。", ["F2-123"]),                       # 1992 mixed
    ("車牌 2F-123 的舊車要報廢。", ["2F-123"]),
    ("肇事車輛車號8859-ER，已移送。", ["8859-ER"]),                     # 2001 car
    ("他的機車車牌是123-AB。", ["123-AB"]),                            # 2001 short
    ("機車922-PPH違規停車。", ["922-PPH"]),                            # old motorcycle
    ("拖車車牌XA-032掉了。", ["XA-032"]),                              # trailer
    ("the car HXT-655 was parked illegally.", ["HXT-655"]),
    # what the vehicle did is vehicle context too, with no 車號 anywhere
    ("里長反映XY-2468長期占用消防通道。", ["XY-2468"]),
    ("民眾檢舉TR-5512佔用車位三天。", ["TR-5512"]),
    ("QRS-579違規停車，請開單。", ["QRS-579"]),
    ("BN-3361超速被測速照相。", ["BN-3361"]),
    ("KL-7022闖紅燈後逃逸。", ["KL-7022"]),
    ("UV-1189停放在紅線上已經兩天。", ["UV-1189"]),
    ("6612-QW肇事後被拖吊。", ["6612-QW"]),
    # ... but programs take up memory, flights and models are not vehicles
    ("RTX-3080占用記憶體太多。", []),
    ("程式 IE-1102 占用大量 CPU。", []),
    ("CI-5312班機延誤，旅客超速通關。", []),
    ("車號 AB1234 和 1234AB 都是舊式車牌", ["AB1234", "1234AB"]),       # no hyphen
    ("車號分別為ABC-1235、AB-1234、1234-AB、123-ABC", ["ABC-1235", "AB-1234", "1234-AB", "123-ABC"]),
    ("幫我整理成 CSV：姓名,身分證,車號\n陳國明,X242506811,2891-CL\n林小美,F108054739,TH-3202",
     ["2891-CL", "TH-3202"]),
    # weak forms alone are not reported
    ("請幫我查 TH-3202 的資料", []),
    ("代號 ZDR-794", []),
    # 2012-shaped but with I/O or a digit 4: only with context
    ("KIA-1235", []),
    ("車號KIA-1234", ["KIA-1234"]),
    # traps: flights, models, standards, dates, amounts, times, units, codes
    ("搭乘長榮航空BR-0087班機，再搭計程車回家。", []),
    ("華航 CI-1234 航班延誤", []),
    ("MX-5000 型號的印表機要換碳粉", []),
    ("請寫一段 Python 程式，計算 ISO-9001 稽核的缺失統計。", []),
    ("請比較 RFC-2616 與 HTTP/2 的差異。", []),
    ("CNS-1234 標準的內容是什麼？", []),
    ("本案於 2024-05 結案，金額 3,500 元，下午 2:30 開會。", []),
    ("新機車是 125CC 的", []),
    ("He was born in Jan 2023.", []),
    ("匯款 USD 2500 給廠商", []),
    ("錯誤代碼 ERR-1235 出現在登入頁", []),
    ("產品編號 XYZ-1235 缺貨", []),
    ("ESG-2030 永續目標的進度", []),
    ("車號ESG-2030的車主", ["ESG-2030"]),
    # inside longer strings: URLs, e-mails, serials, IDs
    ("網址 https://example.com/ABC-1235/detail", []),
    ("信箱 abc-1235@example.com", []),
    ("序號 SN-ABC-1235-X 的機器", []),
    ("ABC-12356", []),
    ("XABC-1235", []),
    ("報案人身分證 J 1 9 9 0 4 1 0 7 6，停在車旁", []),
    # evasions: full-width, lower case, spaces, NBSP, zero-width, odd dashes
    ("the car ＮＵＡ５３５２ was parked illegally.", ["ＮＵＡ５３５２"]),
    ("車號ＷＴＺ－１２８８", ["ＷＴＺ－１２８８"]),
    ("車號pwx-8002的車", ["pwx-8002"]),
    ("駕駛車號S T U - 6 5 0 1之自小客車", ["S T U - 6 5 0 1"]),
    ("駕駛Y C - 6 4 9 2逃逸", ["Y C - 6 4 9 2"]),
    ("我要查一下5 6 5 - Q K Y這台車", ["5 6 5 - Q K Y"]),
    ("車牌PWX\u00a08002", ["PWX\u00a08002"]),
    ("車牌PWX\u200b-\u200b8002", ["PWX\u200b-\u200b8002"]),
    ("車牌PWX\u20138002", ["PWX\u20138002"]),
])
def test_license_plate(text: str, expected: list[str]) -> None:
    assert found(REC, text) == expected


def test_scores_strong_form_high_and_weak_form_low() -> None:
    assert spans(REC, "PWX-8002", 0.0)[0][2] >= 0.8
    assert spans(REC, "TH-3202", 0.0)[0][2] < 0.5
    assert spans(REC, "車號TH-3202", 0.0)[0][2] >= 0.5
