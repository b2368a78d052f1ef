"""A per-text prefilter for pattern recognizers, derived from their regexes once.

Most recognizers cannot match a text that lacks some character: every national ID needs a digit,
every e-mail an ``@``. ``required_class`` reads a regex's parse tree and returns a character class
that every match must contain at least one character of (or None when it cannot tell); a recognizer
whose patterns all have one skips a text in which one ``search`` for the union finds nothing. The
class is compiled with the recognizer's own flags and regex module, so case-insensitive matching and
``\\d`` mean the same for the prefilter as for the patterns: the prefilter can never hide a match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

import regex

# How many code points a category stands for (to prefer the rarest requirement of a sequence).
_CATEGORY = {
    sre_constants.CATEGORY_DIGIT: (r"\d", 10),
    sre_constants.CATEGORY_SPACE: (r"\s", 30),
}
_BROAD = 1 << 20  # a class of this size or more tells nothing worth a search
_REPEATS = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT,
            getattr(sre_constants, "POSSESSIVE_REPEAT", sre_constants.MAX_REPEAT))


@dataclass(frozen=True)
class _Class:
    """Character-class items (regex source) and roughly how many code points they cover."""

    items: frozenset[str]
    size: int

    def __or__(self, other: _Class) -> _Class:
        return _Class(self.items | other.items, self.size + other.size)


def _literal(code: int) -> str:
    return re.escape(chr(code))  # escapes everything special inside a class too (- ] ^ \\)


def _in(items: Sequence[tuple[Any, Any]]) -> _Class | None:
    parts: set[str] = set()
    size = 0
    for op, av in items:
        if op == sre_constants.LITERAL:
            parts.add(_literal(av))
            size += 1
        elif op == sre_constants.RANGE:
            parts.add(f"{_literal(av[0])}-{_literal(av[1])}")
            size += av[1] - av[0] + 1
        elif op == sre_constants.CATEGORY and av in _CATEGORY:
            source, count = _CATEGORY[av]
            parts.add(source)
            size += count
        else:  # NEGATE, a negated or broad category: anything may match
            return None
    return _Class(frozenset(parts), size) if parts and size < _BROAD else None


def _required(sequence: Iterable[tuple[Any, Any]]) -> _Class | None:
    """The rarest class that some mandatory element of ``sequence`` needs, if any."""
    best: _Class | None = None
    for op, av in sequence:
        found: _Class | None = None
        if op == sre_constants.LITERAL:
            found = _Class(frozenset({_literal(av)}), 1)
        elif op == sre_constants.IN:
            found = _in(av)
        elif op == sre_constants.SUBPATTERN:
            _group, add_flags, del_flags, body = av
            found = _required(body) if not (add_flags or del_flags) else None
        elif op in _REPEATS:
            low, _high, body = av
            found = _required(body) if low >= 1 else None
        elif op == sre_constants.BRANCH:
            alternatives = [_required(alternative) for alternative in av[1]]
            if all(a is not None for a in alternatives):
                found = alternatives[0]
                for a in alternatives[1:]:
                    found = found | a  # type: ignore[operator]
        # AT, ASSERT, ASSERT_NOT, ANY, NOT_LITERAL, GROUPREF...: nothing required that we can name.
        if found is not None and (best is None or found.size < best.size):
            best = found
    return best


def _parse(pattern: str) -> Any:
    """``re``'s parse tree of ``pattern``, or None where it may not be what the regex module reads."""
    if "[[" in pattern:
        return None  # a POSIX class ([[:alpha:]]) or nested set to the regex module, literals to re
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, OverflowError, RecursionError):  # syntax only the regex module reads
        return None
    # Inline flags a class derived here would not be compiled with ((?i) under a case-sensitive
    # recognizer): nothing rather than a class that could miss a match.
    if parsed.state.flags & (re.VERBOSE | re.ASCII | re.LOCALE | re.IGNORECASE):
        return None
    return parsed


def required_class(pattern: str) -> _Class | None:
    """A class that every match of ``pattern`` has a character of, or None."""
    parsed = _parse(pattern)
    return None if parsed is None else _required(parsed)


def prefilter(patterns: Sequence[str], flags: int) -> regex.Pattern[str] | None:
    """One compiled class that any match of any of ``patterns`` needs, or None (no prefilter)."""
    union: _Class | None = None
    for pattern in patterns:
        needed = required_class(pattern)
        if needed is None:
            return None
        union = needed if union is None else union | needed
    if union is None or union.size >= _BROAD:
        return None
    return regex.compile("[" + "".join(sorted(union.items)) + "]", flags=flags)


def _first(sequence: Iterable[tuple[Any, Any]]) -> tuple[_Class | None, bool] | None:
    """The characters a match of ``sequence`` can start with, and whether it can match nothing at all;
    None when that cannot be told (then no lookahead is built)."""
    union: _Class | None = None
    for op, av in sequence:
        found: _Class | None
        if op in (sre_constants.AT, sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            continue  # zero-width: the match starts with what follows (a lookaround only narrows it)
        if op == sre_constants.LITERAL:
            found, nullable = _Class(frozenset({_literal(av)}), 1), False
        elif op == sre_constants.IN:
            found, nullable = _in(av), False
            if found is None:
                return None
        elif op == sre_constants.SUBPATTERN:
            _group, add_flags, del_flags, body = av
            inner = _first(body) if not (add_flags or del_flags) else None
            if inner is None:
                return None
            found, nullable = inner
        elif op in _REPEATS:
            low, _high, body = av
            inner = _first(body)
            if inner is None:
                return None
            found, nullable = inner[0], inner[1] or low == 0
        elif op == sre_constants.BRANCH:
            found, nullable = None, False
            for alternative in av[1]:
                inner = _first(alternative)
                if inner is None:
                    return None
                if inner[0] is not None:
                    found = inner[0] if found is None else found | inner[0]
                nullable = nullable or inner[1]
        else:  # ANY, NOT_LITERAL, GROUPREF, conditionals...: any character may come first
            return None
        if found is not None:
            union = found if union is None else union | found
        if not nullable:
            return union, False
    return union, True


def first_class(pattern: str) -> str | None:
    """A character class (regex source) that the first character of every match of ``pattern`` is in,
    or None when none can be named (the pattern may match the empty string, starts with ``.``, ...)."""
    parsed = _parse(pattern)
    if parsed is None:
        return None
    found = _first(parsed)
    if found is None or found[1] or found[0] is None or found[0].size >= _BROAD:
        return None
    return "[" + "".join(sorted(found[0].items)) + "]"


# Flags under which a pattern means what ``re``'s parser reads (VERBOSE, regex's VERSION1 or FULLCASE:
# not always).
_PLAIN_FLAGS = re.IGNORECASE | re.MULTILINE | re.DOTALL | re.UNICODE


def with_first_class(pattern: str, flags: int = 0) -> str:
    """``pattern`` behind a lookahead for its first character: the same matches, but the regex engine
    leaves every other position at once instead of trying the pattern there (its look-behinds and
    alternatives). Unchanged when no class can be named. Compile it with the same ``flags``."""
    first = first_class(pattern) if flags & ~_PLAIN_FLAGS == 0 else None
    return pattern if first is None else f"(?={first})(?:{pattern})"
