"""Tools for policy authors: explain a text, run a policy's examples, diff two policies on a corpus.

Each tool builds a typed report from the engine's real candidates and verdicts, and renders it as
text for a terminal or as JSON for scripts; ``guard.cli`` only wires them to sub-commands.
"""

from __future__ import annotations

from guard.authoring.cases import CaseResult, FileResult, render_results, run_examples
from guard.authoring.diff import CorpusRecord, PolicyDiff, diff_policies, render_diff, render_diff_json
from guard.authoring.explain import explain_report, render_explain

__all__ = [
    "CaseResult",
    "CorpusRecord",
    "FileResult",
    "PolicyDiff",
    "diff_policies",
    "explain_report",
    "render_diff",
    "render_diff_json",
    "render_explain",
    "render_results",
    "run_examples",
]
