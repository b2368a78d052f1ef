"""PERSON: Chinese, compound-surname, indigenous and English names in real sentences; traps."""

from __future__ import annotations

import os
import tempfile

import pytest
from presidio_analyzer import RecognizerResult

from recognizers.analyzer import analyze, build_analyzer
from recognizers.person import ChinesePersonRecognizer
from tests.helpers import found, spans

REC = ChinesePersonRecognizer()

# A hard-wrapped legal text (as pasted from a PDF): many surname characters, no person.
WRAPPED_LAW = "\n".join(
    "本案經調查結果，某警察局員警甲於值勤期間，利用職務上機會查詢車籍資料，並將車主姓名、住址等資料提供予"
    "友人乙，涉犯刑法第132條第1項洩漏國防以外秘密罪及個人資料保護法第41條非法利用個人資料罪。案經地方檢察"
    "署檢察官提起公訴，法院審理後判處有期徒刑六月，得易科罰金，緩刑二年。甲另經服務機關依公務人員考績法核予"
    "一次記二大過專案考績免職處分。高雄市政府警察局與金門縣警察局於本年度共同辦理跨域治安會報，會中由各分局"
    "長報告轄區治安狀況，並於連續假期前完成轄區易生危害處所之清查。"[i:i + 19]
    for i in range(0, 240, 19)
)


@pytest.mark.parametrize(("text", "expected"), [
    # a role or title next to the name
    ("請幫我把以下筆錄改寫成正式公文：報案人宋哲安（身分證字號另附）於昨日下午到所。", ["宋哲安"]),
    ("以下是陳情內容：陳情人潘雅琳，反映住家附近深夜噪音問題。", ["潘雅琳"]),
    ("車主柯建志名下車輛已逾期未繳罰鍰，請擬催繳通知。", ["柯建志"]),
    ("承辦人鄧怡君科員於上午查詢系統資料，請寫職務報告。", ["鄧怡君"]),
    ("受文者：馮立群", ["馮立群"]),
    ("嫌疑人呂鈞駕駛機車逃逸，呂鈞的手機門號另附。", ["呂鈞", "呂鈞"]),
    ("被告闕志銘否認犯行，請摘要答辯理由。", ["闕志銘"]),
    ("簡文彬先生您好，關於您申請的案件，請攜帶身分證正本。", ["簡文彬"]),
    ("謝佩珊老師反映教室冷氣故障，請寫維修申請。", ["謝佩珊"]),
    ("游錫堃院長主持院會。", ["游錫堃"]),
    ("本案聯絡人為粘淑芬小姐，電話請洽總機。", ["粘淑芬"]),
    ("車主張家文名下車輛共三輛。", ["張家文"]),
    # a verb or preposition that introduces a person
    ("幫我寫一封道歉信給蘇郁婷，上週我們寄錯了公文。", ["蘇郁婷"]),
    ("明天請吳建宏到第二會議室報告進度。", ["吳建宏"]),
    ("請轉告莊雅婷明天不用來上班。", ["莊雅婷"]),
    ("Dear 高子欣, your resident certificate will expire next month.", ["高子欣"]),
    # no context: common surname and typical given-name characters, not a dictionary word
    ("林志明昨天打電話來說他下週不能來開會了。", ["林志明"]),
    ("黃淑惠今天請假，請幫我改派值班人員。", ["黃淑惠"]),
    # lists, tables and line starts
    ("出席人員陳國詩、林豪妤、鍾明瑋。決議：下週三前完成報告。", ["陳國詩", "林豪妤", "鍾明瑋"]),
    ("請將下列名單整理成表格：\n葉睿涵，K124340967\n李仁，T169982884", ["葉睿涵", "李仁"]),
    ("幫我整理成 CSV：姓名,身分證\n張家怡,R163065926\n梁威子,U255192431", ["張家怡", "梁威子"]),
    ("姓名\t電話\n塗家銘\t0933-222-111", ["塗家銘"]),
    # compound surnames, each
    ("張簡志明先生於昨日來電詢問補助進度。", ["張簡志明"]),
    ("范姜秀英女士申請低收入戶補助。", ["范姜秀英"]),
    ("歐陽建華局長將出席明天的記者會。", ["歐陽建華"]),
    ("陳情人周黃淑貞反映住家附近違規停車。", ["周黃淑貞"]),
    ("司徒雅琪是本案證人，請整理她的證詞。", ["司徒雅琪"]),
    ("上官文傑提出申請，請寫受理通知。", ["上官文傑"]),
    ("張廖美惠女士陳情社區停車問題。", ["張廖美惠"]),
    ("申請人諸葛明德，申請換發身分證。", ["諸葛明德"]),
    ("司馬承恩同學獲得全國科展第一名。", ["司馬承恩"]),
    ("皇甫靜怡醫師的門診改到週四。", ["皇甫靜怡"]),
    ("證人東方婉婷到庭作證。", ["東方婉婷"]),
    ("端木宏偉經理已批准這筆採購。", ["端木宏偉"]),
    ("嫌疑人夏侯俊傑涉嫌詐欺。", ["夏侯俊傑"]),
    ("請通知公孫嘉玲明天報到。", ["公孫嘉玲"]),
    ("慕容雪小姐來電詢問。", ["慕容雪"]),
    ("令狐冠宇律師代理本案。", ["令狐冠宇"]),
    ("申請人長孫佩君申請補發證件。", ["長孫佩君"]),
    ("請幫我寫一封信給宇文凱翔先生。", ["宇文凱翔"]),
    ("受文者：尉遲家豪", ["尉遲家豪"]),
    ("軒轅志遠委員質詢時提到偏鄉交通。", ["軒轅志遠"]),
    # indigenous names, each middle-dot variant, with and without context
    ("請介紹瓦歷斯·諾幹的作品。", ["瓦歷斯·諾幹"]),
    ("原民會邀請巴奈‧母路演唱。", ["巴奈‧母路"]),
    ("部落代表撒可努•亞榮隆將出席公聽會。", ["撒可努•亞榮隆"]),
    ("報案人馬躍．比吼表示機車遭竊。", ["馬躍．比吼"]),
    ("當事人達少.瓦旦，聯絡電話另附。", ["達少.瓦旦"]),
    ("拉娃・谷幸的新書發表會在週六舉行。", ["拉娃・谷幸"]),
    ("伊斯坦大‧貝雅夫‧正福委員質詢。", ["伊斯坦大‧貝雅夫‧正福"]),
    ("原住民族委員會主委夷將·拔路兒表示支持。", ["夷將·拔路兒"]),
    # a bare surname before 先生/小姐 is a person reference
    ("陳小姐您好，您的包裹已送達。", ["陳"]),
    # Taiwanese usage: transliterations, married names, Southeast-Asian names, nicknames, structure
    ("美國前總統柯林頓昨天抵達桃園機場。", ["柯林頓"]),
    ("陳林秀英女士申請中低收入戶補助。", ["陳林秀英"]),
    ("越南籍移工阮氏梅的居留證已過期。", ["阮氏梅"]),
    ("約翰·史密斯先生明天來所說明。", ["約翰·史密斯"]),
    ("我朋友瓦歷斯·諾幹說他寫了一本新書。", ["瓦歷斯·諾幹"]),
    ("小琪今天請假，請幫我調班。", ["小琪"]),
    ("怡君您好，附件是本週報告。", ["怡君"]),  # 君: a title and a given-name character, kept with the name
    ('{"name": "江宜樺", "phone": "0912-345-678"}', ["江宜樺"]),
    ("姓名,電話\n林秀香,0912-345-678\n王金月,0922-333-444", ["林秀香", "王金月"]),
    ("- 張春英\n- 蔡明哲\n- 許雅芳", ["張春英", "蔡明哲", "許雅芳"]),
    ("犯罪集團的關\n說、行賄利誘，從而洩漏民眾個資。", []),  # hard-wrapped prose: 關說 is not 關
    # romanised Taiwanese names with a hyphenated given name
    ("The applicant Chen Chih-ming lives in Taipei.", ["Chen Chih-ming"]),
    ("Mei-hua Lin will attend the hearing.", ["Mei-hua Lin"]),
    ("Passport name: CHEN, CHIH-MING", ["CHEN, CHIH-MING"]),
    ("We use a check-in system in Long-term care.", []),
    ("承辦人Chen Chih-ming與Lin Mei-hua聯繫", ["Chen Chih-ming", "Lin Mei-hua"]),  # no space by Chinese
    # names in Latin letters after a person's label or role, or before an honorific
    ("原住民族委員會Walis Nokan先生來電", ["Walis Nokan"]),
    ("聯絡人：WALIS NOKAN，電話另告", ["WALIS NOKAN"]),
    ("申請人 Nguyen Thi Mai 的居留證已過期", ["Nguyen Thi Mai"]),
    ("承辦人Amy說明天回覆", ["Amy"]),
    ("請經理Review一下，聯絡人：IT，用Microsoft Teams開會", []),
    # migrant workers, employers, new residents and travellers, in Latin letters after their role
    ("看護工Siti Nurhaliza表示雇主未給付加班費", ["Siti Nurhaliza"]),
    ("雇主Maria Santos與漁工Budi Santoso已到場", ["Maria Santos", "Budi Santoso"]),
    ("外勞Nguyen Van An受傷送醫，新住民Tran Thi Lan陪同", ["Nguyen Van An", "Tran Thi Lan"]),
    ("旅客Michael Brown遺失護照", ["Michael Brown"]),
    ("員工Google一下就知道，民眾用Line Pay付款，學員用Google Classroom", []),
    # a surname standing for someone unnamed, places named after people
    ("陳姓男子今天被捕，林女受傷，王姓里長到場。", []),
    ("中正路上的逢甲大學附近有停車場。", []),
    # surnames of the registry's long tail (譚, 章, 裴, 孟, 季): the tagger's surname feature reads the list
    ("姓名：裴育成，申請人：孟慶華", ["裴育成", "孟慶華"]),
    ("聯絡人：季育成；本案由章家豪承辦。", ["季育成", "章家豪"]),
    # what fills a name field is a name whatever its surname; a placeholder is not
    ("姓名：兀育成，電話：0912345678；申請人姓名：笪志明。", ["兀育成", "笪志明"]),
    ("姓名：瓦旦，性別：男", ["瓦旦"]),
    ("機關全名：行政院；本案承辦單位：內政部", []),
    ("姓名：不詳，姓名：請填寫，請在姓名欄填寫本人全名", []),
    ('[{"姓名": "兀育成", "電話": "0912345678"}]', ["兀育成"]),
    ("| 姓名 | 身分證 |\n|---|---|\n| 兀育成 | A123456789 |\n| 瓦旦 | B223456789 |", ["兀育成", "瓦旦"]),
    ("編號,姓名,備註\n1,兀育成,同上\n2,不詳,無\n\n單位,名稱\n衛福部,長照司", ["兀育成"]),
    # the peoples of a record's 族別 are not persons; 阿美 is also what people are called
    ("族別：泰雅；原住民族別：排灣、布農、魯凱；噶瑪蘭、撒奇萊雅、拉阿魯哇、卡那卡那富", []),
    ("姓名：塔立古，族別：太魯閣；阿美說她明天來", ["塔立古", "阿美"]),
    # English names after a salutation
    ("Dear Mr. Robert Lin, your application has been approved.", ["Robert Lin"]),
    ("Dear Sir, please find the attached form.", []),
    ("Hi Kevin, 請幫我看這份公文", ["Kevin"]),
    ("hi Kevin，請幫我看這份公文", ["Kevin"]),
    ("用 ms Excel 和 dr Watson 除錯", []),
    ("Hello Amy Chen，附件是會議紀錄", ["Amy Chen"]),
    ("Hi Claude, 請幫我整理會議重點。Hello World 範例程式也附上。Hey Team, 週五開會", []),
    # traps: ordinary words that begin with a surname character
    ("許多同仁反映系統太慢，請寫改善建議。", []),
    ("我曾經申請過這項補助。", []),
    ("這個周末圖書館有開嗎？", []),
    ("請提供三種改善方法。", []),
    ("這個做法實在不太高明。", []),
    ("顧客至上才是經營的王道。", []),
    ("他在江湖上很有名氣。", []),
    ("林業政策的發展歷程請幫我整理。", []),
    ("退費何時會入帳？", []),
    ("悠遊卡余額不足怎麼辦？", []),
    ("請讓當事人陳述意見。", []),
    ("謝謝大家的配合。", []),
    ("這份文件何時解密？", []),
    ("請問櫃檯小姐在哪裡？", []),
    ("黃金價格今天上漲。", []),
    ("李子和桃子哪個比較甜？", []),
    ("請將公告張貼在布告欄。", []),
    ("河邊的楊柳隨風搖曳。", []),
    ("路上有很多石頭。", []),
    ("請確認轉帳金額是否正確。", []),
    ("大門漆成朱紅色。", []),
    ("和平是人類共同的願望。", []),
    ("請把文件寄給承辦人。", []),
    ("資訊安全很重要。", []),
    ("白天比較不會塞車。", []),
    ("請幫我寫一段程式。", []),
    ("祝你考試成功。", []),
    ("本局向來重視民眾意見。", []),
    ("由於颱風來襲，活動延期。", []),
    ("連續三天下雨。", []),
    ("我每週去游泳兩次。", []),
    ("洪水退去後開始清理。", []),
    ("黎明前最黑暗。", []),
    ("他常常遲到。", []),
    ("在法律方面，請參考個資法。", []),
    ("車主應於期限內繳納罰鍰。", []),
    ("請加強門禁管理。", []),
    ("本辦法自發布日施行。", []),
    ("請說明適用范圍。", []),
    # traps: agencies, places, streets and laws
    ("請幫我寫給林務局的公文，說明林木疏伐計畫。", []),
    ("請和高雄市政府聯繫，確認活動場地。", []),
    ("金華街與林森北路交叉口發生車禍，請寫新聞稿。", []),
    ("金門、連江、澎湖三個離島縣的交通補助標準不同。", []),
    ("請解釋個人資料保護法第41條、公務人員考績法第12條與國家賠償法第2條。", []),
    ("臺灣高等法院高雄分院與最高法院都曾作出相關判決。", []),
    ("行政院及所屬機關（構）使用生成式AI參考指引第4點規定，業務承辦人不得向生成式AI提供個人資料。", []),
    ("公務機密．資訊安全．個資保護是本年度教育訓練的三大主題。", []),
    ("常務次長、主任秘書、簡任秘書、專門委員、科長、專員、科員等職稱依官等排列。", []),
    ("查本件陳情人所述情節，經本局派員會同里辦公處人員前往現場勘查，尚無違規情事。", []),
    (WRAPPED_LAW, []),
])
def test_person(text: str, expected: list[str]) -> None:
    assert found(REC, text) == expected


@pytest.mark.parametrize(("text", "low", "high"), [
    ("報案人林國宏於昨日到所說明。", 0.85, 1.0),  # role before
    ("劉志峻先生您好。", 0.85, 1.0),  # title after
    ("林志明昨天打電話來。", 0.5, 0.95),  # no context: the tagger's probability alone
    ("陳小姐您好。", 0.5, 0.7),  # bare surname: modest
    ("巴奈‧母路今天來。", 0.85, 1.0),  # the dot is strong evidence
])
def test_person_scores(text: str, low: float, high: float) -> None:
    [(entity, _, score)] = spans(REC, text)
    assert entity == "PERSON"
    assert low <= score <= high


@pytest.mark.parametrize("text", [
    "由於時間不足，高明的方法也沒用。",  # ordinary words: nothing reported, not even below 0.5
    "許多同仁曾經反映，周末加班太多。",
])
def test_ordinary_words_not_even_weak(text: str) -> None:
    assert found(REC, text, min_score=0.0) == []


def test_context_word_is_explained() -> None:
    analyzer = build_analyzer([REC])
    [result] = analyze(analyzer, "報案人林國宏於昨日到所說明。", explain=True)
    assert result.recognition_metadata[RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY] is True
    assert result.recognition_metadata["context_word"] == "報案人"
    assert "報案人" in result.analysis_explanation.textual_explanation


def test_loads_lazily_quietly_and_caches_in_temp(capfd: pytest.CaptureFixture[str]) -> None:
    recognizer = ChinesePersonRecognizer()
    assert not recognizer.model_loaded  # construction stays cheap; jieba is built on first use
    assert found(recognizer, "報案人林國宏於昨日到所。") == ["林國宏"]
    assert recognizer.model_loaded
    assert capfd.readouterr().err == ""  # jieba's "Building prefix dict" is silenced
    assert os.path.exists(os.path.join(tempfile.gettempdir(), "guard-jieba-words.npz"))


def test_model_probability_and_evidence_are_explained() -> None:
    analyzer = build_analyzer([REC])
    [result] = analyze(analyzer, "記者王曉東報導，颱風明天登陸。", explain=True)
    why = result.analysis_explanation.textual_explanation
    assert "name tagger p=" in why and "'記者'" in why and "surname 王" in why


def test_long_run_without_dots_or_breaks() -> None:
    # 20,000 Han characters with no dot, no punctuation: the dotted-name pattern must not backtrack and
    # the tagger cuts pieces; a name in the middle keeps its offset in the original text.
    filler = "國家發展委員會辦理年度計畫審查會議紀錄彙整" * 500
    text = filler[:10_000] + "，報案人宋哲安到所，" + filler[:10_000]
    assert "宋哲安" in found(REC, text)


@pytest.mark.parametrize("text", [
    "他從小就愛搶當孩子王。他出道多年，作品不少。",  # the tagger once ended a name on the full stop
    "會後王、李兩人，與陳。林。張三位代表合影。",
    "「林志明」、『陳美玲』和（王大同）都到了。",
])
def test_no_name_starts_or_ends_with_punctuation(text: str) -> None:
    for name in found(REC, text, min_score=0.0):
        assert name[0].isalnum() and name[-1].isalnum(), name


# The role and intro look-behinds with their first-character test: the same match as the regex alone.
_BEFORE_CASES = [
    ("報案人王小明", 3, "報案人"),  # a role word right before
    ("報案人：王小明", 4, "報案人："),  # a full-width colon between
    ("報案人： 王小明", 5, "報案人： "),  # the longest joiner: two characters
    ("報案人：  王小明", 6, None),  # three joiner characters: no longer the word's name
    ("DEAR 王小明", 5, "DEAR "),  # an English word in capitals (case-insensitive)
    ("Dear\t王小明", 5, "Dear\t"),
    ("endear 王小明", 7, None),  # "dear" inside a word is not the word
    ("今天王小明", 2, None),  # Han characters that end no word
    ("寄給王小明", 2, "寄給"),  # an intro word
    ("給王小明", 1, "給"),
    (" 王小明", 1, None),  # only a joiner before
    ("王小明", 0, None),  # the start of the text
    ("聯絡人：Walis Nokan", 4, "聯絡人："),  # before a name in Latin letters
]


@pytest.mark.parametrize(("text", "at", "expected"), _BEFORE_CASES)
def test_word_before_matches_the_plain_regex(text: str, at: int, expected: str | None) -> None:
    REC.ensure_loaded()
    lex = REC._lexicon
    assert lex is not None
    for before in (lex.role_before, lex.intro_before, lex.model_role_before, lex.latin_role_before):
        for lo in range(at + 1):
            got, plain = before.search(text, lo, at), before.regex.search(text, lo, at)
            assert (got is None) == (plain is None)
            if got is not None and plain is not None:
                assert (got.span(), got.group(0)) == (plain.span(), plain.group(0))
    either = lex.role_before.search(text, 0, at) or lex.intro_before.search(text, 0, at)
    assert (either.group(0) if either else None) == expected


def test_romanised_forms_all_start_with_a_capital() -> None:
    """``_ROMAN_NAME_RE`` looks only where a capital stands: every surname it lists must have one."""
    from recognizers.person import _ROMAN_SURNAMES

    assert all(s[:1].isascii() and s[:1].isupper() for s in _ROMAN_SURNAMES.split("|"))


def test_word_before_with_an_empty_word_is_the_plain_regex() -> None:
    from recognizers.person import _WordBefore

    before = _WordBefore(["報案人", ""])
    for text, at in (("今天王小明", 2), ("報案人王小明", 3), ("王小明", 0), ("  王", 2)):
        got, plain = before.search(text, 0, at), before.regex.search(text, 0, at)
        assert (got and got.span()) == (plain and plain.span())


@pytest.mark.parametrize(("text", "name", "probability", "kept"), [
    ("雙方和解金由甲支付", "解金", 0.7, False),  # unsure, and 和解 crosses its start
    ("雙方和解金由甲支付", "解金", 0.95, True),  # sure: the model's word stands
    ("陳情人周黃淑貞反映", "陳", 0.95, False),  # one character starting a Taiwanese word (陳情)
    ("我和王小明來電", "王小明", 0.7, True),  # no word crosses either edge
    ("我和王小明來電", "王小明", 0.5, False),  # below the least a name alone needs
])
def test_a_tagged_name_without_context_stands_alone_only_when_sure_and_not_inside_a_word(
        text: str, name: str, probability: float, kept: bool) -> None:
    from recognizers.person import _Crossings

    REC.ensure_loaded()
    lex = REC._lexicon
    assert lex is not None
    simplified = lex.to_simplified(text)
    start = text.index(name)
    assert REC._stands_alone(text, simplified, lex, _Crossings(lex, simplified), start, start + len(name),
                             probability) is kept


def test_the_shipped_name_tagger_is_the_network_stacked_on_the_crf() -> None:
    from recognizers.name_net import NET_PATH

    REC.ensure_loaded()
    assert REC._tagger is not None and REC._tagger.net is not None
    assert REC._tagger.net.path == NET_PATH and REC._tagger.net.stacks_on_crf
