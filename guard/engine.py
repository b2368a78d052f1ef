"""The engine: text + policy + destination in, verdict out. Pure: no network, no files, no proxy.

For each text the Presidio analyzer (our recognizers, no NLP model) proposes candidates; the policy
decides which ones it acts on (score threshold, allow-list, destination tier, entity rule); the
strictest action is the decision; presidio-anonymizer writes typed, numbered placeholders.
"""

from __future__ import annotations

import bisect
import enum
import hashlib
import itertools
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig
from presidio_anonymizer.entities import RecognizerResult as AnonymizerResult

from guard.policy import EntityRule, Policy, RecognizerSpec, ServiceSpec, allow_key, split_host_port
from guard.verdict import ClassificationLevel, Decision, Finding, Verdict
from recognizers import builtin_recognizers
from recognizers.analyzer import DirectAnalyzer, analyze, build_analyzer
from recognizers.context import CONTEXT_KEY
from recognizers.declared import DeclaredRecognizer
from recognizers.normalise import normalise
from recognizers.text import ZERO_WIDTH, fold

MARKER = "CLASSIFICATION_MARKER"
LEVEL_KEY = "classification_level"
SPLIT_WINDOW = 64  # characters each side of a segment boundary inspected joined (values and their context)
WARM_UP_TEXT = "報案人王小明（A123456789）車號ABC-1235，電話0912-345-678，【密】"
# Texts whose analysis a proxy worker's engine remembers. API clients send the whole conversation
# with every turn, so most of a request's messages were inspected a turn ago; a remembered one
# costs a hash. Other engines (scan, explain, benchmarks) remember nothing unless asked.
ANALYSIS_CACHE_ENTRIES = 2048
# And at most this many results in all (about 425 bytes each: some 20 MB), so that many long texts
# full of findings cannot grow a worker; one text with more than an eighth of them is not kept.
ANALYSIS_CACHE_RESULTS = 50_000


class Outcome(enum.StrEnum):
    """Why a candidate was or was not acted on (shown by ``guard explain``); the name is its code."""

    ACTED = "acted on"
    BELOW_THRESHOLD = "below the rule's minimum score"
    ALLOW_LISTED = "on the allow-list"
    ALLOWED_BY_RULE = "the rule's action is allow"
    ALLOWED_BY_TIER = "the destination tier's rule for this entity is allow"
    WITHIN_TIER = "classification level allowed at this destination tier"
    OVERLAPPED = "overlaps a stronger finding"
    REJECTED_BY_VALIDATOR = "the recognizer's validator rejected it (score 0)"


@dataclass(frozen=True)
class Candidate:
    """One recognizer result and what the policy made of it.

    The fields after ``explanation`` are filled only by ``candidates(explain=True)``: they cost a
    little on every result and only ``guard explain`` shows them.
    """

    finding: Finding
    rule: EntityRule
    outcome: Outcome
    pattern: str = ""
    explanation: str = ""
    rule_source: str = ""                  # where the rule is, e.g. "tiers.approved_onprem.entities.PERSON"
    allow_listed: bool = False             # the value is on the allow-list, whatever decided the outcome
    base_score: float | None = None        # the pattern's score, before a validator or context changed it
    validation: bool | None = None         # the recognizer's check (checksum): True raised the score to 1
    context_words: tuple[str, ...] = ()    # the words the recognizer looks for near a match
    context_by_recognizer: bool = False    # the recognizer weighed its own context (no single word)
    overlapped_by: Finding | None = None   # the stronger finding that won an overlap


class _ResolvedAnonymizer(AnonymizerEngine):
    """presidio-anonymizer for findings the engine has already made non-overlapping and numbered.

    Presidio re-checks every pair of results for conflicts (quadratic: 40% of the time on a
    2,000-character prompt with 80 findings); ``_resolve_overlaps`` has done that work already.
    It also joins two values of one type with only spaces between them ("王小明 陳志明") into one
    result, whose text then has no number of its own (an unnumbered ``<PERSON>`` that no reply can
    be restored from): each finding keeps its own placeholder here.
    """

    def _remove_conflicts_and_get_text_manipulation_data(
        self, analyzer_results: list[AnonymizerResult], conflict_resolution: object
    ) -> list[AnonymizerResult]:
        return sorted(analyzer_results, key=lambda r: (r.start, r.end))

    def _merge_entities_with_whitespace_between(
        self, text: str, analyzer_results: list[AnonymizerResult]
    ) -> list[AnonymizerResult]:
        return analyzer_results


class _AnalysisCache:
    """The recognizers' results for recently analysed texts, least recently used out first.

    Keyed by a digest of the text, not the text: a worker keeps no prompt longer than its request.
    The results depend only on the text and the engine's recognizers (fixed for an engine's life;
    a new policy builds a new engine), never on the tier or the destination, which are judged
    afterwards on every request. Results are shared, so nothing downstream may change them. A lock
    keeps the order book whole when threads share the engine.
    """

    def __init__(self, entries: int, results: int = ANALYSIS_CACHE_RESULTS) -> None:
        self._entries, self._most_results = entries, results
        self._results: OrderedDict[bytes, tuple[RecognizerResult, ...]] = OrderedDict()
        self._held = 0  # results held, all entries together
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def get(self, key: bytes) -> tuple[RecognizerResult, ...] | None:
        with self._lock:
            found = self._results.get(key)
            if found is None:
                self.misses += 1
                return None
            self.hits += 1
            self._results.move_to_end(key)
            return found

    def put(self, key: bytes, results: Sequence[RecognizerResult]) -> None:
        if len(results) > self._most_results // 8:
            return
        with self._lock:
            previous = self._results.pop(key, ())
            self._results[key] = tuple(results)
            self._held += len(results) - len(previous)
            while len(self._results) > self._entries or self._held > self._most_results:
                _, forgotten = self._results.popitem(last=False)
                self._held -= len(forgotten)

    @property
    def results_held(self) -> int:
        return self._held

    def __len__(self) -> int:
        return len(self._results)


def declared_recognizer(spec: RecognizerSpec) -> DeclaredRecognizer:
    """Build a policy's YAML recognizer (validators come from the built-in checksums)."""
    from recognizers.checksums import VALIDATORS

    return DeclaredRecognizer(
        name=spec.name,
        supported_entity=spec.supported_entity,
        patterns=[(p.name, p.regex, p.score) for p in spec.patterns],
        context=spec.context,
        deny_list=spec.deny_list,
        deny_list_score=spec.deny_list_score,
        validator=VALIDATORS[spec.validator] if spec.validator else None,
        supported_language=spec.supported_language,
    )


class Engine:
    """Built once per policy (the analyzer and dictionaries are heavy).

    Recognizers load their dictionaries on first use; call ``warm_up`` before sharing an engine
    between threads so that loading happens once, up front.
    """

    def __init__(self, policy: Policy, recognizers: Sequence[EntityRecognizer] | None = None, *,
                 cache_entries: int = 0, cache_results: int = ANALYSIS_CACHE_RESULTS) -> None:
        self.policy = policy
        self.cache = _AnalysisCache(cache_entries, cache_results) if cache_entries > 0 else None
        base = list(recognizers) if recognizers is not None else builtin_recognizers()
        self._declared = [declared_recognizer(spec) for spec in policy.recognizers]
        every: list[EntityRecognizer] = [*base, *self._declared]
        self._analyzer = DirectAnalyzer(build_analyzer(every))
        self._by_name: dict[str, EntityRecognizer] = {str(getattr(r, "name", "")): r for r in every}
        self._anonymizer = _ResolvedAnonymizer()  # type: ignore[no-untyped-call]

    def warm_up(self) -> None:
        """Load every lazily built dictionary now, so the first real prompt is not slow."""
        self.inspect(WARM_UP_TEXT)

    # ------------------------------------------------------------------ public API

    def inspect(self, text: str, destination: str | None = None, *, tier: str | None = None) -> Verdict:
        """Inspect one text; see ``inspect_segments``."""
        return self.inspect_segments([text], destination, tier=tier)

    def inspect_segments(self, texts: Sequence[str], destination: str | None = None, *,
                         tier: str | None = None) -> Verdict:
        """Inspect the texts of one request together: one decision, one placeholder numbering.

        ``tier`` names the destination tier directly (a policy's examples test a tier's rules
        without naming a host); otherwise the destination's catalogued service decides it.
        """
        tier = tier or self.policy.tier_for_destination(destination)
        service = self.policy.service_for_host(*split_host_port(destination)) if destination else None
        findings: list[Finding] = []
        for index, text in enumerate(texts):
            findings.extend(
                c.finding for c in self.candidates(text, tier=tier, segment=index, service=service)
                if c.outcome == Outcome.ACTED
            )
        if len(texts) > 1:
            findings = self._with_split_values(texts, findings, tier, service)
        decision = max((self._action(f, tier) for f in findings), default=Decision.ALLOW)
        redacted, placeholders = self._redact(texts, findings, tier)
        points = {self.policy.rule_for(f.entity_type, tier).guideline_point for f in findings}
        return Verdict(
            decision=decision,
            findings=tuple(findings),
            redacted=tuple(redacted),
            placeholders=placeholders,
            policy_name=self.policy.name,
            policy_version=self.policy.version,
            tier=tier,
            guideline_points=tuple(sorted(p for p in points if p is not None)),
        )

    def candidates(self, text: str, tier: str = "external", segment: int = 0,
                   explain: bool = False, service: ServiceSpec | None = None) -> list[Candidate]:
        """Every recognizer result for ``text`` with the policy's outcome, in text order.

        With ``explain`` each candidate also carries what ``guard explain`` shows (rule source,
        allow-list hit, score before context, context words looked for), and matches of declared
        recognizers that their validator rejected are listed too, with score 0.
        """
        if not text:
            return []
        if explain or self.cache is None:
            results: Sequence[RecognizerResult] = analyze(self._analyzer, text, explain=explain)
        else:
            results = self._remembered_analysis(text, self.cache)
        judged = [self._judge(text, r, tier, segment, explain, service) for r in results]
        resolved = _resolve_overlaps(judged)
        if not explain:
            return resolved
        rejected = [self._rejected(text, r, tier, segment) for r in self._declared]
        return _in_text_order(resolved + [c for group in rejected for c in group])

    def _remembered_analysis(self, text: str, cache: _AnalysisCache) -> Sequence[RecognizerResult]:
        """The recognizers' results for ``text``, remembered for the next request that carries it."""
        key = cache.key(text)
        results = cache.get(key)
        if results is None:
            results = tuple(analyze(self._analyzer, text))
            cache.put(key, results)
        return results

    def _with_split_values(self, texts: Sequence[str], findings: list[Finding], tier: str,
                           service: ServiceSpec | None) -> list[Finding]:
        """Add values split across segments (two content parts, two messages): the texts are
        inspected joined around each boundary, and a finding that crosses one is reported as a
        piece in every segment it touches, so each piece is redacted."""
        joined = "".join(texts)
        starts = list(itertools.accumulate((len(t) for t in texts), initial=0))
        boundaries = sorted({b for b in starts[1:-1] if 0 < b < len(joined)})
        crossable = [b for b in boundaries if self._may_cross(joined, b)]
        taken = {(f.segment, f.start, f.end) for f in findings}
        pieces: list[Finding] = []
        for view, back in _split_views(joined, boundaries, crossable):
            for c in self.candidates(view, tier=tier, service=service):
                start, end = back(c.finding.start), back(c.finding.end)
                if c.outcome != Outcome.ACTED or not _crosses(boundaries, start, end):
                    continue
                for segment in range(bisect.bisect_right(starts, start) - 1, len(texts)):
                    seg_start, seg_end = max(start, starts[segment]), min(end, starts[segment + 1])
                    if seg_start >= end:
                        break
                    piece = replace(c.finding, segment=segment, start=seg_start - starts[segment],
                                    end=seg_end - starts[segment])
                    if seg_start < seg_end and (segment, piece.start, piece.end) not in taken:
                        taken.add((segment, piece.start, piece.end))
                        pieces.append(piece)
        if not pieces:
            return findings
        # A piece that overlaps what its segment's own inspection found gives way to it.
        kept = [p for p in pieces if not any(
            f.segment == p.segment and f.start < p.end and p.start < f.end for f in findings)]
        return sorted([*findings, *kept], key=lambda f: (f.segment, f.start, f.end))

    def _may_cross(self, joined: str, boundary: int) -> bool:
        """Whether a value can run across ``boundary``: only then is it inspected joined.

        A value crossing it holds the characters on both sides of it. So: a value character on each
        side (after the gap characters an identifier may hold), or a change of the normalised view
        at the boundary (a run decoded or a spaced-out value closed up across it), or a possible
        classification marking before it on its line (a marking's bracketed or free-text tail may
        hold anything but a line break).
        A declared recognizer's regex may match anything: with one, every boundary is inspected.
        """
        if self._declared:
            return True
        low, high = max(0, boundary - SPLIT_WINDOW), min(len(joined), boundary + SPLIT_WINDOW)
        window = fold(joined[low:high])
        at = boundary - low
        before = window[:at].rstrip(_GAP_CHARS)
        after = window[at:].lstrip(_GAP_CHARS)
        if _MARKING_RE.search(before, before.rfind("\n") + 1):  # a marking's tail never spans lines
            return True
        if before and after and _is_value_char(before[-1]) and _is_value_char(after[0]):
            return True
        view = normalise(window)
        return view is not None and view.changed_at(at)

    # ------------------------------------------------------------------ policy decisions

    def _judge(self, text: str, result: RecognizerResult, tier: str, segment: int,
               explain: bool = False, service: ServiceSpec | None = None) -> Candidate:
        metadata = result.recognition_metadata or {}
        level = None
        if result.entity_type == MARKER:
            label = metadata.get(LEVEL_KEY)
            try:
                level = ClassificationLevel.parse(label) if label else ClassificationLevel.TOP_SECRET
            except ValueError:
                level = ClassificationLevel.TOP_SECRET  # unknown level: treat as the highest
        finding = Finding(
            entity_type=result.entity_type, start=result.start, end=result.end, score=result.score,
            recognizer=str(metadata.get(RecognizerResult.RECOGNIZER_NAME_KEY, "")),
            segment=segment, context_word=metadata.get(CONTEXT_KEY), classification_level=level,
        )
        rule = self.policy.rule_for(result.entity_type, tier)
        explanation = result.analysis_explanation
        pattern = getattr(explanation, "pattern_name", "") or ""
        textual = getattr(explanation, "textual_explanation", "") or ""

        def candidate(outcome: Outcome) -> Candidate:
            plain = Candidate(finding, rule, outcome, pattern, textual)
            if not explain:
                return plain
            recognizer = self._by_name.get(finding.recognizer)
            original = getattr(explanation, "original_score", None)
            return replace(
                plain,
                rule_source=self.policy.rule_source(result.entity_type, tier),
                allow_listed=self._allow_listed(result.entity_type, text[result.start:result.end], service),
                base_score=float(original) if original is not None else None,
                validation=getattr(explanation, "validation_result", None),
                context_words=tuple(getattr(recognizer, "context", None) or ()),
                context_by_recognizer=bool(metadata.get(RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY))
                and finding.context_word is None,
            )

        if result.score < rule.min_score:
            return candidate(Outcome.BELOW_THRESHOLD)
        if self._allow_listed(result.entity_type, text[result.start:result.end], service):
            return candidate(Outcome.ALLOW_LISTED)
        if level is not None and level <= self.policy.max_classification(tier):
            return candidate(Outcome.WITHIN_TIER)
        if rule.action == Decision.ALLOW.value:
            by_tier = self.policy.rule_source(result.entity_type, tier).startswith("tiers.")
            return candidate(Outcome.ALLOWED_BY_TIER if by_tier else Outcome.ALLOWED_BY_RULE)
        return candidate(Outcome.ACTED)

    def _rejected(self, text: str, recognizer: DeclaredRecognizer, tier: str,
                  segment: int) -> list[Candidate]:
        """A declared recognizer's matches that its validator rejected (Presidio drops them silently)."""
        rule = self.policy.rule_for(recognizer.supported_entities[0], tier)
        source = self.policy.rule_source(recognizer.supported_entities[0], tier)
        return [
            Candidate(
                Finding(entity_type=recognizer.supported_entities[0], start=start, end=end, score=0.0,
                        recognizer=str(getattr(recognizer, "name", "")), segment=segment),
                rule, Outcome.REJECTED_BY_VALIDATOR, pattern_name, rule_source=source,
                base_score=score, validation=False, context_words=tuple(recognizer.context or ()),
            )
            for start, end, pattern_name, score in recognizer.rejected_matches(fold(text))
        ]

    def _allow_listed(self, entity_type: str, value: str, service: ServiceSpec | None = None) -> bool:
        allow = self.policy.allow_list
        by_service = service.allow_list if service is not None else {}
        if not allow and not by_service:
            return False
        key = allow_key(value)
        if key in allow.get(entity_type, ()) or key in allow.get("*", ()):
            return True
        return any(key == allow_key(v) for v in (*by_service.get(entity_type, ()), *by_service.get("*", ())))

    def _action(self, finding: Finding, tier: str) -> Decision:
        return Decision(self.policy.rule_for(finding.entity_type, tier).action)

    # ------------------------------------------------------------------ redaction

    def _redact(
        self, texts: Sequence[str], findings: Sequence[Finding], tier: str
    ) -> tuple[list[str], dict[str, str]]:
        """Placeholders for every finding the policy redacts or blocks; warned values stay."""
        to_replace = [f for f in findings if self._action(f, tier) in (Decision.REDACT, Decision.BLOCK)]
        numbering: dict[tuple[str, str], str] = {}
        placeholders: dict[str, str] = {}
        counters: dict[str, int] = {}
        for f in to_replace:  # findings are in text order: number by first appearance
            value = texts[f.segment][f.start:f.end]
            key = (f.entity_type, allow_key(value))
            if key not in numbering:
                counters[f.entity_type] = counters.get(f.entity_type, 0) + 1
                placeholder = f"<{f.entity_type}_{counters[f.entity_type]}>"
                numbering[key] = placeholder
                placeholders[placeholder] = value

        redacted = []
        for index, text in enumerate(texts):
            mine = [f for f in to_replace if f.segment == index]
            if not mine:
                redacted.append(text)
                continue
            operators = {
                etype: OperatorConfig("custom", {"lambda": _placeholder_for(etype, numbering)})
                for etype in {f.entity_type for f in mine}
            }
            results = [AnonymizerResult(f.entity_type, f.start, f.end, f.score) for f in mine]
            redacted.append(self._anonymizer.anonymize(text, results, operators).text)
        return redacted, placeholders


def _placeholder_for(entity_type: str, numbering: dict[tuple[str, str], str]):  # type: ignore[no-untyped-def]
    def lookup(value: str) -> str:
        # presidio-anonymizer validates a custom operator by calling it on the word "PII" first.
        return numbering.get((entity_type, allow_key(value)), f"<{entity_type}>")
    return lookup


# Characters an identifier's pattern allows between its characters (``recognizers.text.GAP``).
_GAP_CHARS = " \t-" + ZERO_WIDTH
# Punctuation inside values: e-mail (@ . _ + ' % & = #), phone ( ) + #, dates / . :, English
# addresses , . ', markings' brackets and 密等: field, name middle dots (瓦歷斯·諾幹), encoded runs.
_VALUE_PUNCTUATION = frozenset("@._+'’%&=#;()[]/:,〔〕【】「」『』〈〉《》·‧•・\\")
# The level of a marking (all contain 密) or an English one: its tail may cross the boundary.
_MARKING_RE = re.compile(r"[密]|SECRET|CONFIDENTIAL")


def _is_value_char(char: str) -> bool:
    return char.isalnum() or char in _VALUE_PUNCTUATION


def _crosses(boundaries: Sequence[int], start: int, end: int) -> bool:
    """Whether ``[start, end)`` has a segment boundary strictly inside it."""
    i = bisect.bisect_right(boundaries, start)
    return i < len(boundaries) and boundaries[i] < end


def _split_views(joined: str, boundaries: Sequence[int], crossable: Sequence[int]
                 ) -> list[tuple[str, Callable[[int], int]]]:
    """The texts to inspect for values split across segments, each with its map back to ``joined``.

    First the segments joined around every crossable boundary (a value in three pieces). Then, for a
    crossable boundary with other boundaries near it, the segments joined at that one alone and
    separated by a line break at the others: joined everywhere, a piece of a value glued to the next
    message ("F12345" | "6784" | "thanks" reads F123456784thanks) is no value at all.
    """
    views: list[tuple[str, Callable[[int], int]]] = []
    for low, high in _windows_around(crossable, len(joined), SPLIT_WINDOW):
        def shifted(at: int, low: int = low) -> int:
            return low + at

        views.append((joined[low:high], shifted))
    for b in crossable:
        low, high = max(0, b - SPLIT_WINDOW), min(len(joined), b + SPLIT_WINDOW)
        others = [o for o in boundaries if low < o < high and o != b]
        if not others:
            continue
        cuts = [low, *others, high]
        view = "\n".join(joined[x:y] for x, y in itertools.pairwise(cuts))
        # A view offset is one character further on than in ``joined`` for every inserted break
        # before it; a break itself maps to the boundary it stands for.
        breaks = [o - low + i for i, o in enumerate(others)]  # each break's offset in the view

        def back(at: int, low: int = low, breaks: list[int] = breaks) -> int:
            return low + at - bisect.bisect_left(breaks, at)

        views.append((view, back))
    return views


def _windows_around(boundaries: Sequence[int], length: int, context: int) -> list[tuple[int, int]]:
    """Stretches of ``context`` characters on each side of every boundary, merged where they meet."""
    windows: list[tuple[int, int]] = []
    for b in boundaries:
        low, high = max(0, b - context), min(length, b + context)
        if windows and low <= windows[-1][1]:
            windows[-1] = (windows[-1][0], high)
        else:
            windows.append((low, high))
    return windows


def _in_text_order(candidates: list[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=lambda c: (c.finding.start, c.finding.end, c.finding.entity_type))


def _resolve_overlaps(candidates: list[Candidate]) -> list[Candidate]:
    """Among acted-on candidates, keep the strongest of any overlapping group (score, then length)."""
    acted = sorted(
        (c for c in candidates if c.outcome == Outcome.ACTED),
        key=lambda c: (-c.finding.score, -(c.finding.end - c.finding.start), c.finding.start),
    )
    starts: list[int] = []  # kept spans, sorted by start; they never overlap each other
    ends: list[int] = []
    kept: list[Finding] = []   # parallel to starts/ends
    resolved: dict[int, Candidate] = {}
    for c in acted:
        f = c.finding
        i = bisect.bisect_left(starts, f.start)
        # Only the kept span just before and the one at/after f.start can overlap f.
        if i > 0 and ends[i - 1] > f.start:
            resolved[id(c)] = replace(c, outcome=Outcome.OVERLAPPED, overlapped_by=kept[i - 1])
        elif i < len(starts) and starts[i] < f.end:
            resolved[id(c)] = replace(c, outcome=Outcome.OVERLAPPED, overlapped_by=kept[i])
        else:
            starts.insert(i, f.start)
            ends.insert(i, f.end)
            kept.insert(i, f)
    return _in_text_order([resolved.get(id(c), c) for c in candidates])
