"""An NLP engine for Presidio that loads no model: recognizers here work on characters, not tokens.

Presidio's default engine loads a spaCy model (a download, and useless for Chinese). Ours returns
empty artifacts; the PERSON recognizer does its own segmentation with jieba where it needs it, and
context words are matched on characters by ``recognizers.context.ChineseContextEnhancer``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine


class NoModelNlpEngine(NlpEngine):
    """Presidio NlpEngine that produces empty artifacts for any language."""

    def __init__(self, languages: Iterable[str] = ("zh", "en")) -> None:
        self._languages = list(languages)

    def load(self) -> None:
        return None

    def is_loaded(self) -> bool:
        return True

    def process_text(self, text: str, language: str) -> NlpArtifacts:
        return NlpArtifacts(
            entities=[], tokens=[], tokens_indices=[], lemmas=[],  # type: ignore[arg-type]
            nlp_engine=self, language=language,
        )

    def process_batch(
        self, texts: Iterable[str], language: str, batch_size: int = 1, n_process: int = 1, **kwargs: object
    ) -> Iterator[tuple[str, NlpArtifacts]]:
        for text in texts:
            yield text, self.process_text(text, language)

    def is_stopword(self, word: str, language: str) -> bool:
        return False

    def is_punct(self, word: str, language: str) -> bool:
        return False

    def get_supported_entities(self) -> list[str]:
        return []

    def get_supported_languages(self) -> list[str]:
        return list(self._languages)
