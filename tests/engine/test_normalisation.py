"""Text forms a model still reads, and values split across segments: the engine finds them all.

Each row is one evasion from issue 13 ("text forms a model still reads", "split values"), written
as a user would send it. The engine must report the value at offsets into the *original* text and
redact it there, so the redacted text holds no trace of the value; ordinary prose with dots,
numbers, words and base64 of binary data must stay untouched.
"""

from __future__ import annotations

import pytest

from guard.engine import Engine
from guard.policy import load_policy
from guard.verdict import Decision

ID = "F123456784"  # a valid national ID (check digit) that is not the textbook sample


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_policy(None))


# (text, entity type, the original characters the finding must cover)
EVASIONS = [
    # encodings a model decodes on its own
    ("身分證 RjEyMzQ1Njc4NA== 請查", "TW_NATIONAL_ID", "RjEyMzQ1Njc4NA=="),
    ("請解碼 6Lqr5YiG6K2JRjEyMzQ1Njc4NA== 後回答", "TW_NATIONAL_ID", "6Lqr5YiG6K2JRjEyMzQ1Njc4NA=="),
    ("id=%46%31%32%33%34%35%36%37%38%34", "TW_NATIONAL_ID", "%46%31%32%33%34%35%36%37%38%34"),
    ("報案人 name=%E9%99%B3%E5%BF%97%E6%98%8E 來電", "PERSON", "%E9%99%B3%E5%BF%97%E6%98%8E"),
    ("身分證&#70;&#49;&#50;&#51;&#52;&#53;&#54;&#55;&#56;&#52;", "TW_NATIONAL_ID",
     "&#70;&#49;&#50;&#51;&#52;&#53;&#54;&#55;&#56;&#52;"),
    ("【&#x6a5f;&#x5bc6;】\n主旨：勤務調整", "CLASSIFICATION_MARKER", "【&#x6a5f;&#x5bc6;】"),
    # JSON held in a string (tool-call arguments written by json.dumps) keeps \uXXXX escapes
    ('{"reporter": "\\u9673\\u5fd7\\u660e", "case": "theft"}', "PERSON", "\\u9673\\u5fd7\\u660e"),
    ('{"note": "\\u3010\\u6a5f\\u5bc6\\u3011 \\u4e3b\\u65e8"}', "CLASSIFICATION_MARKER",
     "\\u3010\\u6a5f\\u5bc6\\u3011"),
    # digits of other scripts
    ("身分證F١٢٣٤٥٦٧٨٤", "TW_NATIONAL_ID", "F١٢٣٤٥٦٧٨٤"),             # Arabic-Indic
    ("身分證F۱۲۳۴۵۶۷۸۴", "TW_NATIONAL_ID", "F۱۲۳۴۵۶۷۸۴"),             # Extended Arabic-Indic
    ("身分證F१२३४५६७८४", "TW_NATIONAL_ID", "F१२३४५६७८४"),             # Devanagari
    ("身分證Ｆ１２３４５６７８４", "TW_NATIONAL_ID", "Ｆ１２３４５６７８４"),  # full-width
    ("身分證F①②③④⑤⑥⑦⑧④", "TW_NATIONAL_ID", "F①②③④⑤⑥⑦⑧④"),             # circled
    ("身分證F¹²³⁴⁵⁶⁷⁸⁴", "TW_NATIONAL_ID", "F¹²³⁴⁵⁶⁷⁸⁴"),             # superscript
    ("身分證F𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟒", "TW_NATIONAL_ID", "F𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟒"),             # mathematical bold
    # invisible characters
    ("身分證F12345\u200e6784", "TW_NATIONAL_ID", "F12345\u200e6784"),     # LRM
    ("身分證F1234\u200f56784", "TW_NATIONAL_ID", "F1234\u200f56784"),     # RLM
    ("身分證\u202eF123456784\u202c", "TW_NATIONAL_ID", "F123456784"),     # bidi override
    ("身分證F1\u034f23456784", "TW_NATIONAL_ID", "F1\u034f23456784"),     # CGJ
    ("身分證F1\ufe0f2345\ufe0e6784", "TW_NATIONAL_ID", "F1\ufe0f2345\ufe0e6784"),  # variation selectors
    ("身分證F\u03011\u03002345678\u03084", "TW_NATIONAL_ID", "F\u03011\u03002345678\u03084"),  # combining
    # characters pulled apart
    ("身分證F.1.2.3.4.5.6.7.8.4", "TW_NATIONAL_ID", "F.1.2.3.4.5.6.7.8.4"),
    ("身分證F_1_2_3_4_5_6_7_8_4", "TW_NATIONAL_ID", "F_1_2_3_4_5_6_7_8_4"),
    ("身分證F123_456_784", "TW_NATIONAL_ID", "F123_456_784"),
    ("身分證\nF\n1\n2\n3\n4\n5\n6\n7\n8\n4\n", "TW_NATIONAL_ID", "F\n1\n2\n3\n4\n5\n6\n7\n8\n4"),
    ("身分證F12345\n6784", "TW_NATIONAL_ID", "F12345\n6784"),
    ("身分證F    1    2    3    4    5    6    7    8    4", "TW_NATIONAL_ID",
     "F    1    2    3    4    5    6    7    8    4"),
    ("手機0912.345.678", "PHONE_NUMBER", "0912.345.678"),
    # a line-wrapped value between lines that start or end with a letter or digit: its own lines are
    # the value, whatever the neighbouring lines hold (glued to them, v10912345678 is no number)
    ("v1\n0912\n345\n678", "PHONE_NUMBER", "0912\n345\n678"),
    ("附件 File1\n0912\n345\n678", "PHONE_NUMBER", "0912\n345\n678"),
    ("0912\n345\n678\n2", "PHONE_NUMBER", "0912\n345\n678"),
    ("note 2\n0912\n345\n678\n3 位", "PHONE_NUMBER", "0912\n345\n678"),
    ("F1234\n5678\n4\n2", "TW_NATIONAL_ID", "F1234\n5678\n4"),
    ("f\n123456784\n7", "TW_NATIONAL_ID", "f\n123456784"),
    ("x64\nf1234\n56784\n600", "TW_NATIONAL_ID", "f1234\n56784"),
    ("v2\n0912_345_678\n1", "PHONE_NUMBER", "0912_345_678"),
    ("arm64\n0912    345    678\n0", "PHONE_NUMBER", "0912    345    678"),
    # a letter glued in front
    ("身分證xF123456784", "TW_NATIONAL_ID", "F123456784"),
    ("居留證QF823456788", "TW_RESIDENT_ID", "F823456788"),
    # look-alike letters
    ("身分證Ϝ123456784", "TW_NATIONAL_ID", "Ϝ123456784"),      # Greek digamma
    ("身分證К123456788", "TW_NATIONAL_ID", "К123456788"),      # Cyrillic Ka
    ("身分證Ꮲ123456781", "TW_NATIONAL_ID", "Ꮲ123456781"),      # Cherokee
    # names
    ("報案人陳 志 明說他看見了", "PERSON", "陳 志 明"),
    ("報案人陳\u200b志明說他看見了", "PERSON", "陳\u200b志明"),
    ("報案人陈志明说他看见了", "PERSON", "陈志明"),
    ("報案人陳.志.明說他看見了", "PERSON", "陳.志.明"),
    # without a role: the surname alone is a name to the tagger, the closed-up view finds it whole
    ("王\u200b小\u200b明昨天來電", "PERSON", "王\u200b小\u200b明"),
    ("林 雅 婷昨天來電", "PERSON", "林 雅 婷"),
    ("請聯絡張\u200c美\u200d玲", "PERSON", "張\u200c美\u200d玲"),
    ("王\u3000小\u3000明昨天來電", "PERSON", "王\u3000小\u3000明"),
    # pictographs between the characters
    ("報案人王😀小😀明說他看見了", "PERSON", "王😀小😀明"),
    ("王★小★明昨天來電", "PERSON", "王★小★明"),
    # symbols and brackets between the characters
    ("報案人王=小=明說他看見了", "PERSON", "王=小=明"),
    ("身分證A#1#2#3#4#5#6#7#8#9", "TW_NATIONAL_ID", "A#1#2#3#4#5#6#7#8#9"),
    ("身分證A😀1😀2😀3😀4😀5😀6😀7😀8😀9", "TW_NATIONAL_ID", "A😀1😀2😀3😀4😀5😀6😀7😀8😀9"),
    # letters and digits in enclosed, squared, parenthesised and dingbat forms
    ("身分證Ⓐ123456789 請查", "TW_NATIONAL_ID", "Ⓐ123456789"),
    ("身分證🅰123456789 請查", "TW_NATIONAL_ID", "🅰123456789"),
    ("居留證🇫823456788 請查", "TW_RESIDENT_ID", "🇫823456788"),
    ("身分證A❶❷❸❹❺❻❼❽❾ 請查", "TW_NATIONAL_ID", "A❶❷❸❹❺❻❼❽❾"),
    ("身分證A➀➁➂➃➄➅➆➇➈ 請查", "TW_NATIONAL_ID", "A➀➁➂➃➄➅➆➇➈"),
    ("居留證F⑻⑵⑶⑷⑸⑹⑺⑻⑻ 請查", "TW_RESIDENT_ID", "F⑻⑵⑶⑷⑸⑹⑺⑻⑻"),
    ("身分證A⒈⒉⒊⒋⒌⒍⒎⒏⒐ 請查", "TW_NATIONAL_ID", "A⒈⒉⒊⒋⒌⒍⒎⒏⒐"),
    ("〖機密〗\n主旨：勤務調整", "CLASSIFICATION_MARKER", "〖機密〗"),
    # characters that render as nothing, and tag characters a model reads as ASCII
    ("身分證F\u31641\u31642\u31643\u31644\u31645\u31646\u31647\u31648\u31644 請查", "TW_NATIONAL_ID",
     "F\u31641\u31642\u31643\u31644\u31645\u31646\u31647\u31648\u31644"),        # Hangul filler
    ("【機\uffa0密】\n主旨：勤務調整", "CLASSIFICATION_MARKER", "【機\uffa0密】"),   # half-width filler
    ("身分證F\u28001\u28002\u28003\u28004\u28005\u28006\u28007\u28008\u28004 請查", "TW_NATIONAL_ID",
     "F\u28001\u28002\u28003\u28004\u28005\u28006\u28007\u28008\u28004"),        # Braille blank
    ("身分證" + "".join(chr(0xE0000 + ord(c)) for c in "A123456789") + " 請查", "TW_NATIONAL_ID",
     "".join(chr(0xE0000 + ord(c)) for c in "A123456789")),
    # bullets, middle dots, arrows, operators between the characters
    ("身分證F‧1‧2‧3‧4‧5‧6‧7‧8‧4 請查", "TW_NATIONAL_ID", "F‧1‧2‧3‧4‧5‧6‧7‧8‧4"),
    ("身分證F•1•2•3•4•5•6•7•8•4 請查", "TW_NATIONAL_ID", "F•1•2•3•4•5•6•7•8•4"),
    ("身分證F→1→2→3→4→5→6→7→8→4 請查", "TW_NATIONAL_ID", "F→1→2→3→4→5→6→7→8→4"),
    ("身分證F∙1∙2∙3∙4∙5∙6∙7∙8∙4 請查", "TW_NATIONAL_ID", "F∙1∙2∙3∙4∙5∙6∙7∙8∙4"),
    ("身分證F`1`2`3`4`5`6`7`8`4 請查", "TW_NATIONAL_ID", "F`1`2`3`4`5`6`7`8`4"),
    # a marking's two characters pulled apart inside its label brackets
    ("【機、密】\n主旨：勤務調整", "CLASSIFICATION_MARKER", "【機、密】"),
    ("【機→密】\n主旨：勤務調整", "CLASSIFICATION_MARKER", "【機→密】"),
    ("【機\t密】\n主旨：勤務調整", "CLASSIFICATION_MARKER", "【機\t密】"),
    ("【機\n密】\n主旨：勤務調整", "CLASSIFICATION_MARKER", "【機\n密】"),
    ("【機_密】\n主旨：勤務調整", "CLASSIFICATION_MARKER", "【機_密】"),
    # escapes of other languages: Python bytes, JavaScript, escape(), quoted-printable
    ("報案人\\xe9\\x99\\xb3\\xe5\\xbf\\x97\\xe6\\x98\\x8e來電", "PERSON",
     "\\xe9\\x99\\xb3\\xe5\\xbf\\x97\\xe6\\x98\\x8e"),
    ("身分證\\x41\\x31\\x32\\x33\\x34\\x35\\x36\\x37\\x38\\x39 請查", "TW_NATIONAL_ID",
     "\\x41\\x31\\x32\\x33\\x34\\x35\\x36\\x37\\x38\\x39"),
    ("報案人\\u{9673}\\u{5fd7}\\u{660e}來電", "PERSON", "\\u{9673}\\u{5fd7}\\u{660e}"),
    ("報案人%u9673%u5FD7%u660E來電", "PERSON", "%u9673%u5FD7%u660E"),
    ("【%u6A5F%u5BC6】\n主旨", "CLASSIFICATION_MARKER", "%u6A5F%u5BC6"),
    ("報案人=E9=99=B3=E5=BF=97=E6=98=8E來電", "PERSON", "=E9=99=B3=E5=BF=97=E6=98=8E"),
    ("【=E6=A9=9F=E5=AF=86】\n主旨", "CLASSIFICATION_MARKER", "=E6=A9=9F=E5=AF=86"),
    # written backwards behind a right-to-left override: displayed (and read) in order
    ("身分證\u202e487654321F\u202c 請查", "TW_NATIONAL_ID", "487654321F"),
    ("\u202e明志陳\u202c昨天來電", "PERSON", "明志陳"),
    ("【\u202e密機\u202c】\n主旨：勤務調整", "CLASSIFICATION_MARKER", "密機"),
    # HTML tags between the characters: inline ones vanish, the rest end a line
    ("陳<b></b>志<b></b>明昨天來電", "PERSON", "陳<b></b>志<b></b>明"),
    ("陳<br>志<br>明昨天來電", "PERSON", "陳<br>志<br>明"),
    ("陳<!---->志<!---->明昨天來電", "PERSON", "陳<!---->志<!---->明"),
    ("身分證F<span>1234</span>56784 請查", "TW_NATIONAL_ID", "F<span>1234</span>56784"),
    ("【機<i></i>密】\n主旨：勤務調整", "CLASSIFICATION_MARKER", "【機<i></i>密】"),
    # a decoded value between lines of field names (a request's other strings): not glued to them
    ("description\n" + "".join(chr(0xE0000 + ord(c)) for c in "F123456784") + "\nmodel", "TW_NATIONAL_ID",
     "".join(chr(0xE0000 + ord(c)) for c in "F123456784")),
    ("description\nRjEyMzQ1Njc4NA==\nmodel", "TW_NATIONAL_ID", "RjEyMzQ1Njc4NA=="),
    # small capitals, and digits written as Chinese numerals
    ("身分證ᴀ123456789 請查", "TW_NATIONAL_ID", "ᴀ123456789"),
    ("居留證ꜰ823456788 請查", "TW_RESIDENT_ID", "ꜰ823456788"),
    ("身分證A一二三四五六七八九 請查", "TW_NATIONAL_ID", "A一二三四五六七八九"),
    ("居留證F捌貳參肆伍陸柒捌捌 請查", "TW_RESIDENT_ID", "F捌貳參肆伍陸柒捌捌"),
    ("請回電〇九一二 三四五 六七八", "PHONE_NUMBER", "〇九一二 三四五 六七八"),
    # Markdown marks inside a value, line breaks and tabs written as escapes (a JSON string pasted)
    ("身分證 A12345**6789** 請查", "TW_NATIONAL_ID", "A12345**6789"),
    ("身分證 A123`456`789 請查", "TW_NATIONAL_ID", "A123`456`789"),
    ("身分證 A123~~456~~789 請查", "TW_NATIONAL_ID", "A123~~456~~789"),
    ("電話 0912\\n345\\n678 請回電", "PHONE_NUMBER", "0912\\n345\\n678"),
    ("身分證 F12345\\t6784 請查", "TW_NATIONAL_ID", "F12345\\t6784"),
    # markings
    ("【機\u200e密】\n主旨：本週勤務調整", "CLASSIFICATION_MARKER", "【機\u200e密】"),
    ("【机密】\n主旨：本週勤務調整", "CLASSIFICATION_MARKER", "【机密】"),
    ("【機 密】\n主旨：本週勤務調整", "CLASSIFICATION_MARKER", "【機 密】"),
]


@pytest.mark.parametrize(("text", "entity_type", "value"), EVASIONS)
def test_an_evasion_is_found_at_its_original_characters(engine: Engine, text: str, entity_type: str,
                                                          value: str) -> None:
    verdict = engine.inspect(text)
    covered = [text[f.start:f.end] for f in verdict.findings if f.entity_type == entity_type]
    assert any(value in c for c in covered), covered
    if verdict.decision is not Decision.BLOCK:
        assert value not in verdict.redacted[0]


SPLIT = [
    # (segments of one request, entity type, the piece of each segment that must be redacted; "": none)
    (["身分證字號是F12345", "6784，請幫我查詢"], "TW_NATIONAL_ID", ["F12345", "6784"]),
    (["身分證F1234", "567", "84 請查"], "TW_NATIONAL_ID", ["F1234", "567", "84"]),
    (["報案人陳", "志明說他看見了"], "PERSON", ["陳", "志明"]),
    (["請回電0912-345", "-678"], "PHONE_NUMBER", ["0912-345", "-678"]),
    # the pieces are followed by another message that starts with a letter or digit: joined to it,
    # F123456784thanks is no identifier
    (["請查 F12345", "6784", "thanks"], "TW_NATIONAL_ID", ["F12345", "6784"]),
    (["電話0912", "345678", "2 位同仁"], "PHONE_NUMBER", ["0912", "345678"]),
    # three pieces or more between neighbours that end or start with a letter or digit
    (["v1", "0912", "345", "678"], "PHONE_NUMBER", ["", "0912", "345", "678"]),
    (["see File1", "0912", "345", "678", "2"], "PHONE_NUMBER", ["", "0912", "345", "678"]),
    (["x64", "f12", "345", "6784", "600"], "TW_NATIONAL_ID", ["", "f12", "345", "6784"]),
    (["請回電", "0912", "345", "678", "9 點前"], "PHONE_NUMBER", ["", "0912", "345", "678"]),
]


@pytest.mark.parametrize(("segments", "entity_type", "pieces"), SPLIT)
def test_a_value_split_across_segments_is_redacted_in_every_piece(
        engine: Engine, segments: list[str], entity_type: str, pieces: list[str]) -> None:
    verdict = engine.inspect_segments(segments)
    found = {(f.segment, segments[f.segment][f.start:f.end])
             for f in verdict.findings if f.entity_type == entity_type}
    assert found >= {(i, piece) for i, piece in enumerate(pieces) if piece}
    for piece, redacted in zip(pieces, verdict.redacted[:len(pieces)], strict=True):
        assert not piece or piece not in redacted


def test_a_marking_split_across_two_messages_blocks(engine: Engine) -> None:
    assert engine.inspect_segments(["【機", "密】\n主旨：勤務調整"]).decision is Decision.BLOCK


ORDINARY = [
    "圓周率約是 3.14159，版本 1.2.3 已發布，IP 是 192.168.1.10。",
    "請參考 https://www.example.com/docs/v1/chat_completions?page=2 的說明。",
    "The U.S.A. and the U.K. signed it on 2024.01.15 in Washington D.C.",
    "sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "圖片 iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
    "選項 A、B、C 三組，各 1 2 3 名。",
    "會議紀錄\n\n1. 報告事項\n2. 討論事項\n3. 臨時動議",
    "&amp; &lt;div&gt; 是 HTML，%20 是空白。",
    "第⑩條之規定，請參照。",
    "今天天氣很好😀明天見😀，大家辛苦了👍👍",
    "好😀棒😀喔，謝謝你們★★★",
    "x=1, y=2, z=3 的值是多少？第(一)(二)(三)項請見 a[1][2][3]。",
    "他說「好」了，大家都同意(全數通過)！",
    "台灣 🇹🇼 加油！服務專線請撥 1999，或寫信到 ⓐ 信箱。",
    "流程：收件 → 審核 → 發文 → 歸檔，共 4 步 • 約 3 天。",
    "<p>會議時間</p><p>下午 <b>3</b> 點</p><br>地點：第 2 會議室",
    "算式 a=BE 與 b=EF，x × y ÷ z，⑴ 報告 ⑵ 討論 ⑶ 動議。",
    "【公告】明天停班，【活動】下週舉行。",
    "二〇二四年十二月三十一日，一五一十地說了三三兩兩的事。",
    # Markdown and escapes around ordinary numbers, code and paths
    "請看 `print(1)` 與 **粗體** 2*3*4 和 ~~刪除~~ 1~3 天，範圍 100~200 元，時間 09:00~12:00。",
    "每公噸調漲3000~7000元，2006~2008年出貨1800~2000萬片，面積 1200*3400 公釐。",
    "檔案在 C:\\new\\2023\\notes.txt，JSON 是 \"a\\n2023\\n12\"。",
    # lines of numbers, read again with their line breaks as spaces (the delimited reading)
    "環境：\nCPython\n3.11.2\n0\n600\n1.52.0\n1.52.0",
    "IP 位址：\n192.168.1.10\n255.255.255.0\n8.8.8.8",
    "數量\n1200\n3400\n5600\n7800\n合計 18000",
    "第 1 頁\n2\n3\n4\n5\n6\n7\n8\n9\n10",
]


def test_a_captions_bracketed_character_is_not_joined_to_a_name(engine: Engine) -> None:
    """怡（左）昨 is a caption, not a spaced-out word: the names keep their own characters."""
    text = "黃湘怡（左）昨為慶祝生日，和張天霖（右）一起吃飯。"
    found = [text[f.start:f.end] for f in engine.inspect(text).findings]
    assert found == ["黃湘怡", "張天霖"]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_is_left_alone(engine: Engine, text: str) -> None:
    verdict = engine.inspect(text)
    assert verdict.findings == ()
    assert verdict.redacted == (text,)
