"""Export the name tagger's crfsuite model to the weights file that tagging loads (person_crf.npz).

Run after training (``tools/train_names.py`` calls it): ``python tools/export_name_model.py
[--model recognizers/data/person_crf.crfsuite] [--out recognizers/data/person_crf.npz]``.  The output is
deterministic (same model, same bytes), and every attribute of the model must match a feature template
of ``recognizers/name_tagger.py``, or the export stops naming the attribute.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recognizers.name_tagger import MODEL_PATH, WEIGHTS_PATH, TaggerWeights


def export(model: Path = MODEL_PATH, out: Path = WEIGHTS_PATH) -> TaggerWeights:
    """Key ``model``'s weights by template and write them to ``out``."""
    weights = TaggerWeights.from_crfsuite(model)
    weights.save(out)
    return weights


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=MODEL_PATH)
    parser.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    args = parser.parse_args(argv)
    try:
        weights = export(args.model, args.out)
    except (OSError, ValueError) as e:
        print(f"export_name_model: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB): {len(weights.window_keys)} window"
          f" attributes, {len(weights.flag_names)} flags, labels {'/'.join(weights.labels)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
