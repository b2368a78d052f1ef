"""Small path selectors shared by the JSON formats."""

from __future__ import annotations

from typing import Any

from guard.formats._tree import Path, generic_paths


def text_or_parts(node: Any, path: Path, part_types: frozenset[str], text_key: str = "text") -> list[Path]:
    """A string, or a list of parts ``{"type": <one of part_types>, "text": ...}`` (bare strings allowed)."""
    if isinstance(node, str):
        return [path]
    out: list[Path] = []
    if isinstance(node, list):
        for i, part in enumerate(node):
            if isinstance(part, str):
                out.append((*path, i))
            elif isinstance(part, dict) and part.get("type", "text") in part_types \
                    and isinstance(part.get(text_key), str):
                out.append((*path, i, text_key))
    return out


def string_list(node: Any, path: Path) -> list[Path]:
    """A string or a list of strings (token arrays are skipped)."""
    if isinstance(node, str):
        return [path]
    if isinstance(node, list):
        return [(*path, i) for i, v in enumerate(node) if isinstance(v, str)]
    return []


def all_strings(node: Any, path: Path) -> list[Path]:
    """Every user-visible string below ``path`` (tool inputs, function responses)."""
    return [(*path, *p) for p in generic_paths(node)] if not isinstance(node, str) else [path]
