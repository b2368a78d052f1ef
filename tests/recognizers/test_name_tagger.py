"""The numpy name tagger gives crfsuite's labels and marginals, from the same feature templates.

crfsuite (python-crfsuite, the test extra) runs the shipped ``.crfsuite`` model on ``features()``
strings; the product runs ``person_crf.npz`` with numpy.  Texts: the repository's own corpus
(``guard/data/sample_corpus.jsonl``), one sentence at a time and joined into long prompts (which
take the block-wise decoding), plus text shapes that are not prose.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from guard.sample_corpus import SAMPLE_CORPUS
from recognizers import crf_inference
from recognizers.name_tagger import (
    MODEL_PATH,
    PAD_AFTER,
    PAD_BEFORE,
    WEIGHTS_PATH,
    WORD_TAGS,
    NameTagger,
    TaggedName,
    TaggerWeights,
    _Vocabulary,
    crfsuite_names,
    features,
    flag_attribute_names,
    pieces,
    window_key,
    word_tag,
)
from recognizers.person import ChinesePersonRecognizer

pycrfsuite = pytest.importorskip("pycrfsuite", reason="python-crfsuite (the test extra) compares the tagger")

RECOGNIZER = ChinesePersonRecognizer(use_model=False)
TEXTS = [json.loads(line)["text"] for line in SAMPLE_CORPUS.read_text(encoding="utf-8").splitlines() if line]
# Not prose: what prompts also hold (tables, code, spaced-out and wrapped text, mixed scripts).
ODD_TEXTS = [
    "姓名,電話,地址\n王小明,0912-345-678,臺北市中正區\n陳美華,02-2345-6789,高雄市",
    "def f(x):\n    return x  # 林志玲說這段程式要改\n",
    "陳 志 明 與 林.美.華 昨 天 來 過",
    "Hi 志明，寄件者：張家豪 <chang@example.com>",
    "瓦歷斯·諾幹與約翰·史密斯、阮氏梅一起出席。",
    "本案經調查結果，某警察局員警甲於值勤期間，利用職務上機會查詢車籍資料，並將\n車主姓名、住址等資料提供予友人乙。",
    "１２３４５６７８９０ＡＢＣ全形字與半形字混用，歐陽娜娜、張簡、范姜先生",
    "\U00020000\U0002a6d6 罕用字後面接著李大仁",
    "",
    "   ",
    "no han characters at all",
]


@pytest.fixture(scope="module")
def tagger() -> NameTagger:
    return NameTagger(RECOGNIZER.feature_lexicon())


@pytest.fixture(scope="module")
def reference() -> Any:
    crf = pycrfsuite.Tagger()
    crf.open(str(MODEL_PATH))
    return crf


def _reference_tag(crf: Any, simplified: str) -> list[TaggedName]:
    """What the tagger returned when crfsuite ran it: piece by piece, mean marginal per name."""
    return crfsuite_names(crf, simplified, RECOGNIZER.feature_lexicon())


def _assert_same(found: list[TaggedName], expected: list[TaggedName]) -> None:
    assert [(n.start, n.end) for n in found] == [(n.start, n.end) for n in expected]
    for name, want in zip(found, expected, strict=True):
        assert name.probability == pytest.approx(want.probability, abs=1e-6)


def test_every_model_attribute_is_computed_by_a_template() -> None:
    weights = TaggerWeights.from_crfsuite(MODEL_PATH)  # raises naming an attribute no template computes
    model = crf_inference.read_crfsuite_model(MODEL_PATH)
    flags = set(flag_attribute_names())
    assert all(window_key(a) is not None or a in flags for a in model.attributes)
    assert len(weights.window_keys) + len(set(model.attributes) & flags) == len(model.attributes)


def _train_tiny_model(path: Path, extra_attribute: str | None) -> None:
    trainer = pycrfsuite.Trainer(verbose=False)
    rows = [["c=王", "sn"], ["c=小", "gn"], ["c=明", "ws2n"], ["c=说", "title+1"]]
    if extra_attribute is not None:
        rows[1].append(extra_attribute)
    trainer.append(rows, ["B", "I", "I", "O"])
    trainer.append([["c=的"], ["c=了"]], ["O", "O"])
    trainer.set_params({"max_iterations": 5, "feature.possible_transitions": True})
    trainer.train(str(path))


@pytest.mark.parametrize("attribute", ["zz=1", "sn3", "title+5", "c=张三", "b-1=张"])
def test_an_attribute_no_template_computes_stops_the_export(attribute: str, tmp_path: Path) -> None:
    model = tmp_path / "model.crfsuite"
    _train_tiny_model(model, attribute)
    with pytest.raises(ValueError, match="template"):
        TaggerWeights.from_crfsuite(model)


def test_a_model_of_known_templates_exports_and_tags_like_crfsuite(tmp_path: Path) -> None:
    model, weights = tmp_path / "model.crfsuite", tmp_path / "model.npz"
    _train_tiny_model(model, None)
    TaggerWeights.from_crfsuite(model).save(weights)
    tagger = NameTagger(RECOGNIZER.feature_lexicon(), weights)
    crf = pycrfsuite.Tagger()
    crf.open(str(model))
    for text in ("王小明说的了", "今天王小明说，" * 60):
        _assert_same(tagger.tag(text), _reference_tag(crf, text))


def test_a_file_that_is_not_a_crfsuite_model_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "model.crfsuite"
    bogus.write_bytes(b"PK\x03\x04" + bytes(60))
    with pytest.raises(ValueError, match="not a crfsuite"):
        crf_inference.read_crfsuite_model(bogus)


def test_the_shipped_weights_are_the_export_of_the_shipped_model(tmp_path: Path) -> None:
    out = tmp_path / "weights.npz"
    TaggerWeights.from_crfsuite(MODEL_PATH).save(out)
    assert out.read_bytes() == WEIGHTS_PATH.read_bytes(), "run tools/export_name_model.py after training"


def test_weights_read_from_the_model_file_match_crfsuite(reference: Any) -> None:
    info = reference.info()
    model = crf_inference.read_crfsuite_model(MODEL_PATH)
    assert set(model.labels) == set(info.labels)
    state = {(model.attributes[a], model.labels[y]): w for a, y, w in
             zip(model.state_attribute, model.state_label, model.state_weight, strict=True)}
    assert state.keys() == info.state_features.keys()
    for key, weight in info.state_features.items():  # crfsuite's dump prints six decimals
        assert state[key] == pytest.approx(weight, abs=1e-6)
    for (source, target), weight in info.transitions.items():
        moved = model.transitions[model.labels.index(source), model.labels.index(target)]
        assert moved == pytest.approx(weight, abs=1e-6)


@pytest.mark.parametrize("text", TEXTS + ODD_TEXTS)
def test_names_and_probabilities_match_crfsuite(text: str, tagger: NameTagger,
                                                reference: Any) -> None:
    simplified = RECOGNIZER.to_simplified(text)
    _assert_same(tagger.tag(simplified), _reference_tag(reference, simplified))


@pytest.mark.parametrize("size", [401, 2_000, 30_000])
def test_long_prompts_match_crfsuite(size: int, tagger: NameTagger, reference: Any) -> None:
    joined = "\n".join([*TEXTS, *ODD_TEXTS] * (size // 20_000 + 1))[:size]
    simplified = RECOGNIZER.to_simplified(joined)
    _assert_same(tagger.tag(simplified), _reference_tag(reference, simplified))


@pytest.mark.parametrize("text", [*TEXTS[:60], *ODD_TEXTS[:7], "\n".join(TEXTS[:12]),
                                  "\n".join(TEXTS)[:4900]])
def test_short_texts_state_scores_equal_the_vectorised_ones(text: str, tagger: NameTagger) -> None:
    """A short text's state scores (one stacked table of every template but the context words) are
    the numbers of the per-template path that long texts take, to rounding."""
    simplified = RECOGNIZER.to_simplified(text)
    spans = [(lo, hi) for lo, hi in pieces(simplified)]
    buffer = "".join(PAD_BEFORE + simplified[lo:hi] + PAD_AFTER for lo, hi in spans)
    rows = np.concatenate([np.arange(lo, hi) + 2 + 4 * i for i, (lo, hi) in enumerate(spans)])
    codes = np.frombuffer(buffer.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    assert codes.max() < 0x10000  # beyond the Basic Multilingual Plane, only the vectorised path runs
    vectorised = tagger.flag_scores(buffer, rows, tagger.weights.flag_weights)
    vectorised[rows] += tagger._windows.scores(codes, rows)
    short = tagger._short_emissions(buffer, rows, codes)
    np.testing.assert_allclose(short[rows], vectorised[rows], atol=1e-9)


def test_every_label_and_marginal_of_every_piece_matches_crfsuite(tagger: NameTagger,
                                                                  reference: Any) -> None:
    """Both decoders (block-wise numpy and per-sequence Python) on all pieces, every position."""
    lex = RECOGNIZER.feature_lexicon()
    simplified = RECOGNIZER.to_simplified("\n".join(TEXTS + ODD_TEXTS))
    piece_texts = [simplified[lo:hi] for lo, hi in pieces(simplified)]
    buffer = "".join(PAD_BEFORE + p + PAD_AFTER for p in piece_texts)
    first = np.cumsum([0] + [len(p) + 4 for p in piece_texts[:-1]]) + len(PAD_BEFORE)
    length = np.array([len(p) for p in piece_texts])
    rows = np.concatenate([np.arange(f, f + n) for f, n in zip(first, length, strict=True)])
    scores = tagger.emissions(buffer, rows)
    transitions = tagger.weights.transitions
    labels = np.zeros(len(buffer), dtype=np.int8)
    crf_inference.viterbi(scores, transitions, first, length, labels)
    probabilities = crf_inference.marginals(scores, transitions, first, length, rows)
    names = tagger.weights.labels
    at = 0
    for piece, f, n in zip(piece_texts, first.tolist(), length.tolist(), strict=True):
        expected = reference.tag(features(piece, lex))
        assert [names[y] for y in labels[f:f + n]] == expected
        short = crf_inference.viterbi_sequence(scores[f:f + n].tolist(), transitions.tolist())
        assert [names[y] for y in short] == expected
        short_marginals = crf_inference.marginals_sequence(scores[f:f + n].tolist(), transitions.tolist())
        for i in range(n):
            for y, label in enumerate(names):
                want = reference.marginal(label, i)
                assert probabilities[at + i, y] == pytest.approx(want, abs=1e-6)
                assert short_marginals[i][y] == pytest.approx(want, abs=1e-6)
        at += n


def test_block_decoding_equals_sequence_decoding_on_random_scores() -> None:
    """Sequences of every length around the block size, strong and weak scores: the two decoders agree."""
    rng = np.random.default_rng(7)
    transitions = rng.normal(0, 3, (3, 3))
    lengths = np.array([1, 2, crf_inference.BLOCK - 1, crf_inference.BLOCK, crf_inference.BLOCK + 1,
                        3 * crf_inference.BLOCK, 400, *rng.integers(1, 120, 40).tolist()])
    first = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))  # one unused row between sequences
    scores = rng.normal(0, 4, (int(first[-1] + lengths[-1] + 1), 3))
    labels = np.full(len(scores), -1, dtype=np.int8)
    crf_inference.viterbi(scores, transitions, first, length=lengths, labels=labels)
    rows = np.concatenate([np.arange(f, f + n) for f, n in zip(first, lengths, strict=True)])
    probabilities = crf_inference.marginals(scores, transitions, first, lengths, rows)
    at = 0
    for f, n in zip(first.tolist(), lengths.tolist(), strict=True):
        assert labels[f:f + n].tolist() == crf_inference.viterbi_sequence(scores[f:f + n].tolist(),
                                                                           transitions.tolist())
        expected = np.array(crf_inference.marginals_sequence(scores[f:f + n].tolist(), transitions.tolist()))
        np.testing.assert_allclose(probabilities[at:at + n], expected, atol=1e-9)
        at += n
    assert (labels[np.setdiff1d(np.arange(len(scores)), rows)] == -1).all()


def _real_scores(tagger: NameTagger) -> list[list[float]]:
    """The tagger's state scores over the first 40 sample texts' pieces, padding cut off."""
    simplified = RECOGNIZER.to_simplified("\n".join(TEXTS[:40]))
    buffer = "".join(PAD_BEFORE + simplified[lo:hi] + PAD_AFTER for lo, hi in pieces(simplified))
    scores: list[list[float]] = tagger.emissions(buffer, np.arange(2, len(buffer) - 2)).tolist()[2:-2]
    return scores


def test_marginals_of_a_window_are_those_of_the_whole_sequence(tagger: NameTagger) -> None:
    """The forward pass stopped at ``hi`` and the backward pass at ``lo`` give bit for bit the numbers of
    the whole sequence (the tagger asks only for its names' positions): real pieces and random scores."""
    real = _real_scores(tagger)
    rng = np.random.default_rng(11)
    transitions = tagger.weights.transitions.tolist()
    for scores in (real[:60], real[:1], real[:2], rng.normal(0, 4, (37, 3)).tolist()):
        whole = crf_inference.marginals_sequence(scores, transitions)
        n = len(scores)
        for lo in range(n + 1):
            for hi in range(lo, n + 1):
                assert crf_inference.marginals_sequence(scores, transitions, lo, hi) == whole[lo:hi]
    for lo, hi in ((-1, 2), (3, 2), (0, 61)):
        with pytest.raises(ValueError, match="marginals asked for positions"):
            crf_inference.marginals_sequence(real[:60], transitions, lo, hi)


def test_marginals_from_weights_computed_by_numpy_are_those_from_math_exp(tagger: NameTagger) -> None:
    """The tagger hands the marginals numpy's exp of a whole text's shifted scores: the same numbers
    as the per-position ``math.exp`` to rounding, on real pieces and random scores, any window."""
    real = _real_scores(tagger)
    rng = np.random.default_rng(5)
    transitions = tagger.weights.transitions.tolist()
    for scores in (real[:80], real[:1], rng.normal(0, 6, (50, 3)).tolist()):
        array = np.array(scores)
        weights = np.exp(array - array.max(axis=1, keepdims=True)).tolist()
        n = len(scores)
        for lo, hi in ((0, n), (n // 3, n // 2 + 1), (n - 1, n)):
            np.testing.assert_allclose(
                crf_inference.marginals_sequence(scores, transitions, lo, hi, weights=weights),
                crf_inference.marginals_sequence(scores, transitions, lo, hi), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="weights for a sequence"):
        crf_inference.marginals_sequence(real[:5], transitions, weights=weights[:4])


def test_marginals_of_wanted_positions_are_those_of_the_window(tagger: NameTagger) -> None:
    """Asking only for some positions of a window (the tagger asks for its names' characters) gives bit
    for bit the window's numbers at them: real pieces and random scores, every subset of ends, one
    position, none; positions out of order or outside the window are refused."""
    real = _real_scores(tagger)
    rng = np.random.default_rng(13)
    transitions = tagger.weights.transitions.tolist()
    for scores in (real[:60], real[:1], real[:3], rng.normal(0, 4, (41, 3)).tolist()):
        n = len(scores)
        for lo, hi in ((0, n), (0, 1), (n - 1, n), (n // 3, 2 * n // 3 + 1)):
            window = crf_inference.marginals_sequence(scores, transitions, lo, hi)
            for wanted in ([], [lo], [hi - 1], list(range(lo, hi, 2)), sorted({lo, (lo + hi) // 2, hi - 1})):
                got = crf_inference.marginals_sequence(scores, transitions, lo, hi, wanted)
                assert got == [window[i - lo] for i in wanted]
    for lo, hi, wanted in ((2, 10, [5, 3]), (2, 10, [3, 3]), (2, 10, [1, 9]), (2, 10, [2, 10]), (4, 4, [3])):
        with pytest.raises(ValueError, match="marginals asked for positions"):
            crf_inference.marginals_sequence(real[:20], transitions, lo, hi, wanted)


def test_random_han_text_matches_crfsuite(tagger: NameTagger, reference: Any) -> None:
    rng = random.Random(5)
    alphabet = "陳志明王小林美華機密身分證號碼報案人電話車牌臺北市中正區的了是在有說先生。，\n "
    text = "".join(rng.choice(alphabet) for _ in range(5_000))
    simplified = RECOGNIZER.to_simplified(text)
    _assert_same(tagger.tag(simplified), _reference_tag(reference, simplified))


@pytest.mark.parametrize("text", [*TEXTS[:40], *ODD_TEXTS])
def test_flag_counts_are_the_flags_features_lists(text: str, tagger: NameTagger) -> None:
    """``flag_counts`` (numpy, what the CRF weighs and the network reads) counts ``features``' flags."""
    from recognizers.name_tagger import padded

    simplified = RECOGNIZER.to_simplified(text)
    texts = [simplified[lo:hi] for lo, hi in pieces(simplified)]
    if not texts:
        return
    buffer, _first, _length, rows = padded(texts)
    counts = tagger.flag_counts(buffer, rows)[rows]
    names = flag_attribute_names()
    expected = np.zeros_like(counts)
    row = 0
    for piece in texts:
        for attributes in features(piece, RECOGNIZER.feature_lexicon()):
            for attribute in attributes:
                if attribute in names:
                    expected[row, names.index(attribute)] += 1
            row += 1
    assert counts.tolist() == expected.tolist()


def test_the_dictionary_tables_tag_every_word_as_word_tag_does() -> None:
    """The dictionary's word tables (built by array operations over jieba's ~500,000 entries) hold
    every word of two to four characters with ``word_tag``'s tag, and nothing else (frequency-0
    prefixes, other lengths)."""
    lex = RECOGNIZER.feature_lexicon()
    vocabulary = _Vocabulary(lex)
    alphabet = np.flatnonzero(vocabulary.word_char_id)  # index k + 1 is the k-th code
    found = {}
    for table in vocabulary.words:
        assert (table.keys[1:] > table.keys[:-1]).all()  # sorted and distinct: binary search
        for key, tag in zip(table.keys.tolist(), table.tags.tolist(), strict=True):
            ids = [(key >> (16 * (table.length - 1 - k))) & 0xFFFF for k in range(table.length)]
            found["".join(chr(alphabet[i - 1]) for i in ids)] = WORD_TAGS[tag]
    expected = {w: word_tag(w, lex) for w, f in lex.word_freq.items() if f and 2 <= len(w) <= 4}
    assert found == expected
    assert set(found.values()) == set(WORD_TAGS)  # every tag occurs, jieba's names ("n") too


def test_bench_against_loads_a_checkouts_own_tagger(tagger: NameTagger) -> None:
    """``tools/bench_name_tagger.py --against``: the checkout's tagger class and decoders are its own
    modules (here this very tree, loaded again), and they find the same names with the same scores."""
    import importlib.util

    root = Path(__file__).resolve().parents[2]
    path = root / "tools" / "bench_name_tagger.py"
    spec = importlib.util.spec_from_file_location("bench_name_tagger_tool", path)
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    other = tool._checkout_tagger(root, tagger)
    assert type(other) is not NameTagger
    assert type(other).__module__ == "against_name_tagger"
    assert type(other)._decode_in_python.__globals__["viterbi_sequence"].__module__ == "against_crf_inference"
    for text in TEXTS[:60]:
        simplified = RECOGNIZER.to_simplified(text)
        assert tool._same_names(other.tag(simplified), tagger.tag(simplified))
