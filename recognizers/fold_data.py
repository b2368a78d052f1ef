"""Build ``recognizers/data/fold_table.json``, the Unicode data behind ``fold`` and ``normalise``.

Run ``python -m recognizers.fold_data`` after upgrading Python (its ``unicodedata``), OpenCC or
confusable-homoglyphs (a dev dependency: the product reads the shipped JSON, never the library).
The table is generated, not hand-written, so it covers every script Unicode knows:

- ``one``: characters that fold to exactly one ASCII character (or one Traditional character),
  so ``fold`` stays length-preserving: every Unicode decimal digit (Arabic-Indic, Devanagari,
  mathematical, ...), superscript and circled digits whose NFKC form is one digit, letters with
  accents (NFKD without its combining marks), Unicode's confusables of Latin letters and digits
  (Cyrillic, Greek, Cherokee, mathematical alphanumerics), and Simplified characters that are not
  in Big5 (cp950) mapped by OpenCC ``s2t``: such a character never occurs in Traditional text, so
  converting it cannot change a Traditional prompt (``台``, ``干``, ``后`` stay as they are).
- ``many``: numbers whose NFKC form is several ASCII characters (``⑩`` is ``10``), for ``normalise``.
- ``invisible``: code point ranges of format characters (Cf: ZWSP, LRM/RLM, bidi controls), combining
  marks (Mn, Me: CGJ, variation selectors, accents), which ``normalise`` drops.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

TABLE_PATH = Path(__file__).parent / "data" / "fold_table.json"

# Blocks whose characters are Chinese text, never look-alikes of Latin: left to the s2t mapping.
_CJK_BLOCKS = ((0x2E80, 0x2FDF), (0x3000, 0x303F), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
               (0xF900, 0xFAFF), (0xFF00, 0xFFEF), (0x20000, 0x3FFFF))


def _is_cjk(code: int) -> bool:
    return any(low <= code <= high for low, high in _CJK_BLOCKS)


def _ascii_alnum(text: str) -> bool:
    return text.isascii() and text.isalnum()


def _digits_and_letters() -> tuple[dict[str, str], dict[str, str]]:
    one: dict[str, str] = {}
    many: dict[str, str] = {}
    for code in range(0x80, 0x30000):
        if _is_cjk(code):
            continue
        ch = chr(code)
        decimal = unicodedata.decimal(ch, None)
        if decimal is not None:
            one[ch] = str(decimal)
            continue
        nfkc = unicodedata.normalize("NFKC", ch)
        if unicodedata.category(ch) == "No" and _ascii_alnum(nfkc):
            (one if len(nfkc) == 1 else many)[ch] = nfkc
            continue
        if unicodedata.category(ch).startswith("L"):
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            if len(base) == 1 and _ascii_alnum(base):
                one[ch] = base
    return one, many


def _confusables(taken: dict[str, str]) -> dict[str, str]:
    from confusable_homoglyphs.utils import load  # dev dependency: only this generator needs it

    data = load("confusables.json")
    found: dict[str, set[str]] = {}
    for latin, homoglyphs in data.items():
        if len(latin) != 1 or not _ascii_alnum(latin):
            continue
        for homoglyph in homoglyphs:
            ch = homoglyph["c"]
            if len(ch) == 1 and not ch.isascii() and not _is_cjk(ord(ch)) and ch not in taken:
                found.setdefault(ch, set()).add(latin)
    return {ch: latins.pop() for ch, latins in found.items() if len(latins) == 1}


def _simplified() -> dict[str, str]:
    import opencc

    chars = [chr(c) for c in range(0x4E00, 0xA000)]
    # One character per line: OpenCC then converts characters, not phrases.
    converted = opencc.OpenCC("s2t").convert("\n".join(chars)).split("\n")
    table = {}
    for simplified, traditional in zip(chars, converted, strict=True):
        if len(traditional) != 1 or traditional == simplified:
            continue
        try:
            simplified.encode("cp950")
            continue  # also a Traditional character: left alone
        except UnicodeEncodeError:
            table[simplified] = traditional
    return table


def _invisible_ranges() -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for code in range(0x110000):
        if unicodedata.category(chr(code)) in ("Cf", "Mn", "Me"):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return ranges


def build() -> dict[str, object]:
    one, many = _digits_and_letters()
    one.update(_confusables(one))
    one.update(_simplified())
    return {
        "unicode_version": unicodedata.unidata_version,
        "one": dict(sorted(one.items())),
        "many": dict(sorted(many.items())),
        "invisible": _invisible_ranges(),
    }


def main() -> None:
    TABLE_PATH.write_text(json.dumps(build(), ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {TABLE_PATH}")


if __name__ == "__main__":
    main()
