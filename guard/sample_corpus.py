"""The project's own synthetic corpus: labelled prompts for ``guard bench``, the load test and the tests.

Every value is made up here: names from common surnames and given-name characters, national IDs and
resident certificate numbers with correct check digits, plates in issued series, phone numbers,
e-mail addresses on example domains, classification markings. The records are built from a fixed
seed, so ``python -m guard.sample_corpus`` rewrites ``guard/data/sample_corpus.jsonl`` byte for byte
(a test checks that the shipped file is what this module writes). Each line is
``{"id", "text", "entities": [{"type", "start", "end", "text"}]}`` with offsets in code points.
"""

from __future__ import annotations

import json
import random
import string
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

SAMPLE_CORPUS = Path(__file__).resolve().parent / "data" / "sample_corpus.jsonl"
SEED = 16
RECORDS = 400

SURNAMES = "陳林黃張李王吳劉蔡楊許鄭謝郭洪曾邱廖賴周徐蘇葉莊呂江何蕭羅高潘簡朱鍾游彭詹胡施沈余盧梁趙顏柯翁魏孫戴"  # noqa: E501
GIVEN = "志明俊傑淑芬美玲家豪雅婷冠宇怡君宗翰佩珊建宏欣怡承恩詩涵柏翰宜蓁育誠靜宜文彬筱雯國強麗華雅惠子晴品妤"
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O on plates
PLATE_DIGITS = "012356789"  # no 4 on plates
MAIL_DOMAINS = ("example.gov.tw", "mail.example.org", "example.com.tw")
MARKINGS = ("密等：機密", "密等：極機密", "密等：密", "密等：絕對機密", "〔機密〕", "〔極機密〕")
PLACES = ("中山路口", "民生社區", "信義區公所", "第二會議室", "市府大樓")


@dataclass(frozen=True)
class Slot:
    """One labelled value in a template: its entity type and how to make one."""

    entity_type: str
    make: Callable[[random.Random], str]


def person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)


def _with_check_digit(prefix: str) -> str:
    """``prefix`` (letter, second character, 7 digits) completed with the digit that validates it."""
    # Imported here, not at the top: bench and the load test need only SAMPLE_CORPUS, not Presidio.
    from recognizers.checksums import national_id_valid

    return next(prefix + d for d in string.digits if national_id_valid(prefix + d))


def national_id(rng: random.Random) -> str:
    letter = rng.choice("ABCDEFGHJKLMNPQTUVXYWZIO")
    return _with_check_digit(letter + rng.choice("12") + "".join(rng.choices(string.digits, k=7)))


def resident_id(rng: random.Random) -> str:
    letter = rng.choice("ABCDEFGHJKLMNPQ")
    return _with_check_digit(letter + rng.choice("89AB") + "".join(rng.choices(string.digits, k=7)))


def plate(rng: random.Random) -> str:
    letters = "".join(rng.choices(PLATE_LETTERS, k=3))
    return f"{letters}-{''.join(rng.choices(PLATE_DIGITS, k=4))}"


def mobile(rng: random.Random) -> str:
    digits = "".join(rng.choices(string.digits, k=8))
    return rng.choice((f"09{digits[:2]}-{digits[2:5]}-{digits[5:]}",
                       f"+886 9{digits[:2]} {digits[2:5]} {digits[5:]}", f"09{digits}"))


def landline(rng: random.Random) -> str:
    digits = "".join(rng.choices("23456789", k=1) + rng.choices(string.digits, k=7))
    return rng.choice((f"(02){digits[:4]}-{digits[4:]}", f"02-{digits[:4]}-{digits[4:]}"))


def email(rng: random.Random) -> str:
    user = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 8)))
    return f"{user}{rng.randint(1, 99)}@{rng.choice(MAIL_DOMAINS)}"


def marking(rng: random.Random) -> str:
    return rng.choice(MARKINGS)


P, NID, RID = Slot("PERSON", person), Slot("TW_NATIONAL_ID", national_id), Slot("TW_RESIDENT_ID", resident_id)
PLATE, MOBILE = Slot("TW_LICENSE_PLATE", plate), Slot("PHONE_NUMBER", mobile)
LAND = Slot("PHONE_NUMBER", landline)
MAIL, MARK = Slot("EMAIL_ADDRESS", email), Slot("CLASSIFICATION_MARKER", marking)

# "{}" marks a slot, filled in order. Plain text between slots is the context a real prompt has.
TEMPLATES: tuple[tuple[str, tuple[Slot, ...]], ...] = (
    ("請幫我把以下筆錄改寫成正式公文：報案人{}（身分證字號{}）於昨日下午駕駛車號{}之自小客車，在{}與機車發生擦撞。",
     (P, NID, PLATE, Slot("", lambda rng: rng.choice(PLACES)))),
    ("幫我寫一封道歉信給{}，他的電話是{}，上週我們寄錯了他的公文。", (P, MOBILE)),
    ("以下是民眾陳情內容，請摘要重點：陳情人{}，聯絡電話{}，電子郵件{}，反映住家附近深夜噪音問題。",
     (P, MOBILE, MAIL)),
    ("請將下列名單整理成表格：\n{}，{}\n{}，{}", (P, NID, P, NID)),
    ("外籍看護{}的居留證號碼是{}，請幫我確認申請補助需要哪些文件。", (P, RID)),
    ("{}\n主旨：有關本局年度資安稽核結果，請各單位依限改善。", (MARK,)),
    ("這份文件右上角標示「{}」，可以幫我摘要成三點嗎？", (MARK,)),
    ("會議聯絡人：{}，分機以外請打{}，或來信{}。", (P, LAND, MAIL)),
    ("請幫我查一下車牌{}的違規紀錄要怎麼申請，車主是{}。", (PLATE, P)),
    ("麻煩把這段話翻成英文：本案承辦人為{}，如有疑問請洽{}。", (P, LAND)),
    ("申請人{}（{}）已補件，請通知他到櫃台領取。", (P, NID)),
    ("請以公文格式回覆：來文機關聯絡人{}，電子郵件{}。", (P, MAIL)),
    ("幫我寫一段開場白，介紹今天的講者{}教授。", (P,)),
    ("請整理這份簽呈的重點（{}），並列出待辦事項。", (MARK,)),
    ("居留證{}的持有人{}想詢問工作許可展延流程，請擬一份回覆。", (RID, P)),
    ("請根據以下資料產生停車繳費通知：車號{}，聯絡電話{}。", (PLATE, MOBILE)),
    ("請幫我潤飾這段文字，讓語氣更正式：感謝各位同仁這一季的努力，下季目標是提升服務滿意度。", ()),
    ("幫我列出五個提升公文寫作效率的方法。", ()),
    ("請說明政府資料開放平臺的資料授權條款重點。", ()),
    ("請把以下會議紀錄改寫成條列式：一、預算執行率已達八成。二、下次會議延至下月召開。", ()),
    ("用淺白的語言解釋什麼是個人資料保護法的「特定目的」。", ()),
    ("請幫我擬一則宣導貼文，提醒民眾申辦案件可使用線上服務。", ()),
)


def make_records(seed: int = SEED, count: int = RECORDS) -> Iterator[dict[str, object]]:
    """``count`` labelled records, the same ones for the same seed."""
    rng = random.Random(seed)
    for index in range(count):
        template, slots = TEMPLATES[index % len(TEMPLATES)]
        pieces = template.split("{}")
        text, entities = pieces[0], []
        for slot, tail in zip(slots, pieces[1:], strict=True):
            value = slot.make(rng)
            if slot.entity_type:
                entities.append({"type": slot.entity_type, "start": len(text), "end": len(text) + len(value),
                                 "text": value})
            text += value + tail
        yield {"id": f"S{index:04d}", "text": text, "entities": entities}


def render(records: Iterator[dict[str, object]]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def main() -> int:
    SAMPLE_CORPUS.parent.mkdir(exist_ok=True)
    SAMPLE_CORPUS.write_text(render(make_records()), encoding="utf-8")
    print(f"wrote {RECORDS} records to {SAMPLE_CORPUS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
