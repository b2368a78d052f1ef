"""The numpy forward pass of the name network gives the torch model's state scores and labels.

``tools/train_names_net.py`` writes, next to the weights, a fixture: sentences of its own, the state
scores torch computed for them and torch's Viterbi labels.  The network under test is the one the
fixture was written with (``FIXTURES``); torch is not needed here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recognizers.crf_inference import viterbi_sequence
from recognizers.name_net import NET_PATH, NameNet
from recognizers.name_tagger import WEIGHTS_PATH, NameTagger, padded, save_npz
from recognizers.person import ChinesePersonRecognizer

DATA = Path(__file__).parent / "data"
# (network weights, the fixture the training script wrote with them)
FIXTURES = [(DATA / "person_net_small.npz", DATA / "person_net_small_fixture.npz"),
            (NET_PATH, DATA / "person_net_fixture.npz")]  # the shipped network and what torch gave for it
RECOGNIZER = ChinesePersonRecognizer(use_model=False)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


@pytest.mark.parametrize(("net_path", "fixture_path"), FIXTURES)
def test_numpy_scores_and_labels_equal_torch(net_path: Path, fixture_path: Path) -> None:
    fixture = _arrays(fixture_path)
    texts = [str(t) for t in fixture["texts"]]
    tagger = NameTagger(RECOGNIZER.feature_lexicon(), WEIGHTS_PATH, net_path)
    assert tagger.net is not None
    assert tuple(str(x) for x in fixture["labels"]) == tagger.net.labels
    buffer, _first, length, rows = padded(texts)
    scores = tagger.state_scores(buffer, rows, length)[rows]
    np.testing.assert_allclose(scores, fixture["emissions"], atol=2e-4)
    transitions = tagger.net.transitions.tolist()
    bounds = np.cumsum(fixture["lengths"])[:-1]
    expected_labels = np.split(fixture["best"], bounds)
    for piece_scores, expected in zip(np.split(scores, bounds), expected_labels, strict=True):
        assert viterbi_sequence(piece_scores.tolist(), transitions) == expected.tolist()


@pytest.mark.parametrize(("net_path", "fixture_path"), FIXTURES)
def test_names_of_a_long_prompt_are_those_of_its_sentences(net_path: Path, fixture_path: Path) -> None:
    """Block-wise decoding of a long prompt (numpy) and per-sentence decoding (Python) agree."""
    tagger = NameTagger(RECOGNIZER.feature_lexicon(), WEIGHTS_PATH, net_path)
    sentences = [str(t) for t in _arrays(fixture_path)["texts"]]
    one_by_one = []
    offset = 0
    long_text = "\n".join(sentences * 60)
    for sentence in sentences * 60:
        one_by_one += [(n.start + offset, n.end + offset) for n in tagger.tag(sentence)]
        offset += len(sentence) + 1
    assert len(long_text) > 3000  # the numpy decoding's size
    assert [(n.start, n.end) for n in tagger.tag(long_text)] == one_by_one


@pytest.mark.parametrize(("net_path", "fixture_path"), FIXTURES)
def test_saving_the_weights_again_gives_the_same_bytes(net_path: Path, fixture_path: Path,
                                                      tmp_path: Path) -> None:
    copy = tmp_path / "again.npz"
    save_npz(copy, _arrays(net_path))
    assert copy.read_bytes() == net_path.read_bytes()


def test_a_missing_network_file_stops_loading(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train_names_net"):
        NameNet.load(tmp_path / "nothing.npz")


def test_weights_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    arrays = _arrays(FIXTURES[0][0])
    arrays["input_weight"] = arrays["input_weight"][1:]
    broken = tmp_path / "broken.npz"
    save_npz(broken, arrays)
    with pytest.raises(ValueError, match="inconsistent shapes"):
        NameNet.load(broken)


def test_a_file_that_is_not_an_npz_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip", encoding="utf-8")
    with pytest.raises(ValueError):
        NameNet.load(bad)


_BLAS_THREADS = """
import json, os, sys
import threadpoolctl
from recognizers.name_net import NameNet

def blas_threads():
    return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]

before = blas_threads()
NameNet.load(__import__("pathlib").Path(sys.argv[1]))
loaded = blas_threads()
read, write = os.pipe()
if os.fork() == 0:  # an inspection worker is forked from the process that built the engine
    os.write(write, json.dumps(blas_threads()).encode())
    os._exit(0)
os.close(write)
forked = json.loads(os.read(read, 1000))
print(json.dumps({"before": before, "loaded": loaded, "forked": forked}))
"""


def test_a_loaded_network_runs_blas_on_one_thread_in_forked_workers() -> None:
    """BLAS threads spinning on a shared machine cost a 1 KB prompt 40 ms instead of 5: one thread."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env["OPENBLAS_NUM_THREADS"] = "2"  # what numpy starts with on a 2-core machine, whatever this one is
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    done = subprocess.run([sys.executable, "-c", _BLAS_THREADS, str(FIXTURES[0][0])], env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    threads = json.loads(done.stdout)
    assert threads["before"] and all(n == 2 for n in threads["before"])
    assert threads["loaded"] == [1] * len(threads["before"])
    assert threads["forked"] == [1] * len(threads["before"])


def test_a_short_text_reads_the_same_network_inputs_from_the_fused_table() -> None:
    """The CRF scores and the projected flag counts of a short text come from one table gather; they
    equal the general path's (flag counts looked up, then projected), roles and titles included."""
    from recognizers.name_tagger import _codes

    tagger = NameTagger(RECOGNIZER.feature_lexicon(), WEIGHTS_PATH, NET_PATH)
    assert tagger.net is not None
    texts = [str(t) for t in _arrays(FIXTURES[1][1])["texts"]]
    texts += ["報案人林國宏於昨日到所，記者王曉東報導。", "歐陽志明先生與張簡美玲小姐到場。",
              "陳情人周黃淑貞反映"]
    for batch in (texts, texts[:1], texts[-3:]):
        buffer, _first, length, rows = padded(batch)
        general = tagger.net_inputs(buffer, rows, length, with_crf_scores=True)
        fused = tagger._short_net_inputs(buffer, rows, length, _codes(buffer))
        assert general.crf_scores is not None and general.flags is not None
        assert fused.crf_scores is not None and fused.flag_input is not None
        np.testing.assert_allclose(fused.crf_scores, general.crf_scores, atol=1e-9)
        projected = general.flags.astype(np.float32) @ tagger.net.flag_projection
        np.testing.assert_allclose(fused.flag_input, projected, atol=1e-5)
        np.testing.assert_allclose(tagger.net.emissions(fused), tagger.net.emissions(general), atol=1e-5)


@pytest.mark.parametrize("astral", [False, True])
def test_a_long_text_is_scored_in_short_groups_of_whole_pieces_with_the_same_numbers(astral: bool) -> None:
    """Past 5,000 characters the pieces go in groups whose buffers are short (read from the short-text
    tables; a group with a character beyond the plane takes the general path): the scores are those of
    the whole buffer at once."""
    tagger = NameTagger(RECOGNIZER.feature_lexicon(), WEIGHTS_PATH, NET_PATH)
    assert tagger.net is not None
    sentences = [str(t) for t in _arrays(FIXTURES[1][1])["texts"]]
    sentences.append("報案人林國宏於昨日到所，記者王曉東報導。")
    texts = sentences * (12_000 // sum(len(t) for t in sentences) + 1)
    if astral:
        texts[len(texts) // 2] = "𠮷" + texts[len(texts) // 2]
    buffer, _first, length, rows = padded(texts)
    groups = tagger._short_groups(rows, length)
    assert len(groups) > 2 and max(hi - lo for lo, hi, _first, _last in groups) <= 5000
    firsts, lasts = [g[2] for g in groups], [g[3] for g in groups]
    assert firsts == [0, *lasts[:-1]] and lasts[-1] == len(length) and groups[-1][1] == len(buffer)
    whole = np.zeros((len(buffer), 3))
    whole[rows] = tagger.net.emissions(tagger.net_inputs(buffer, rows, length, with_crf_scores=True))
    np.testing.assert_allclose(tagger.state_scores(buffer, rows, length), whole, atol=1e-5)
