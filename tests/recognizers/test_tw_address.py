"""TW_ADDRESS: street-level addresses with a house number, from the first component to 號/樓/之N."""

from __future__ import annotations

import pytest

from recognizers.tw_address import COUNTIES, DISTRICTS, TwAddressRecognizer
from tests.helpers import found

REC = TwAddressRecognizer()


@pytest.mark.parametrize(("text", "expected"), [
    # the full form, full-width digits, village and 鄰, floor and 之N
    ("申請人戶籍地址：臺中市西屯區福星里12鄰福星路３３８巷１２號５樓之２，請擬公文通知。",
     ["臺中市西屯區福星里12鄰福星路３３８巷１２號５樓之２"]),
    # a postal code starts the span; 台 for 臺; Chinese-numeral section
    ("請寄到100台北市中正區重慶南路一段122號。", ["100台北市中正區重慶南路一段122號"]),
    ("地址：新北市板橋區文化路一段100巷5弄3號之1", ["新北市板橋區文化路一段100巷5弄3號之1"]),
    # rural: village and 鄰 without a road
    ("戶籍在南投縣信義鄉東埔村1鄰5號，請協助查詢。", ["南投縣信義鄉東埔村1鄰5號"]),
    # without the city; a road alone before the number; the verb before it is not in the span
    ("他住在中山路5號，請改寫成英文。", ["中山路5號"]),
    ("基地位於和平東路三段438號的大樓", ["和平東路三段438號"]),
    # a room (室) is outside the span; 10樓 is the last unit
    ("送至高雄市前鎮區中山二路2號10樓B室", ["高雄市前鎮區中山二路2號10樓"]),
    # Chinese numerals for the house number, 大道
    ("凱達格蘭大道一號是總統府", ["凱達格蘭大道一號"]),
    # former county and township names, short city names
    ("陶坊在台北縣鶯歌鎮尖山埔路90號", ["台北縣鶯歌鎮尖山埔路90號"]),
    ("郵寄北市內湖區行愛路141巷38號", ["北市內湖區行愛路141巷38號"]),
    ("時間 20:00台北市松江路63巷7號1樓", ["台北市松江路63巷7號1樓"]),
    # English postal form
    ("Address: 3F., No. 5, Ln. 12, Sec. 2, Zhongshan N. Rd., Zhongshan Dist., Taipei City 104, Taiwan",
     ["3F., No. 5, Ln. 12, Sec. 2, Zhongshan N. Rd., Zhongshan Dist., Taipei City 104"]),
    ("Please mail it to No. 1, Shifu Rd., Xinyi Dist., Taipei City 110.",
     ["No. 1, Shifu Rd., Xinyi Dist., Taipei City 110"]),
    # traps: a road, a district or a city alone; a lane without a number; distances; document numbers
    ("中山路拓寬工程下週開工，請擬新聞稿。", []),
    ("臺北市中正區的人口統計請做成表格。", []),
    ("重慶南路一段100巷附近停車位不足。", []),
    ("走了3公里5號出口就到了。", []),
    ("依本府113年5月3日府授字第1130001234號函辦理。", []),
    ("No. 5 on the list, Main St. is closed", []),
])
def test_address(text: str, expected: list[str]) -> None:
    assert found(REC, text) == expected


def test_addresses_deep_in_a_long_text_are_found_at_their_offsets() -> None:
    # The patterns run in windows around house numbers: offsets must come back into the whole text.
    filler = "身分證字號不是地址，" * 3000
    english = "No. 1, Shifu Rd., Xinyi Dist., Taipei City 110"
    text = filler + "住址：臺北市中正區重慶南路一段122號" + filler + english
    assert found(REC, text) == ["臺北市中正區重慶南路一段122號", english]


def test_division_data_is_complete() -> None:
    # 內政部: 22 counties and cities, 368 townships and districts (some names repeat: 東區, 信義區).
    assert len(COUNTIES) == 22
    assert {"臺北市", "新北市", "連江縣", "澎湖縣"} <= set(COUNTIES)
    assert {"那瑪夏區", "阿里山鄉", "太麻里鄉", "烏坵鄉", "中西區"} <= set(DISTRICTS)
