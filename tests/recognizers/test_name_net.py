"""The numpy forward pass of the name network gives the torch model's state scores and labels.

``tools/train_names_net.py`` writes, next to the weights, a fixture: sentences of its own, the state
scores torch computed for them and torch's Viterbi labels.  The network under test is the one the
fixture was written with (``FIXTURES``); torch is not needed here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recognizers.crf_inference import viterbi_sequence
from recognizers.name_net import NameNet
from recognizers.name_tagger import WEIGHTS_PATH, NameTagger, padded, save_npz
from recognizers.person import ChinesePersonRecognizer

DATA = Path(__file__).parent / "data"
# (network weights, the fixture the training script wrote with them)
FIXTURES = [(DATA / "person_net_small.npz", DATA / "person_net_small_fixture.npz")]
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
