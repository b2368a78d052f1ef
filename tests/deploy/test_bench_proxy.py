"""deploy/bench_proxy.py at a tiny size: both proxies run, guard really inspects, the report is complete.

Only that the benchmark works is tested here; its numbers are read by people (README), never asserted.
"""

from __future__ import annotations

import subprocess
import sys

from tests.deploy.conftest import DEPLOY

CASES = ("1 KB prompt, AI host", "1 KB clean, AI host", "20 KB prompt, AI host", "1 KB, non-AI host",
         "1 KB x 4-turn chats, AI")


def test_the_proxy_benchmark_runs_both_proxies_and_reports_every_case() -> None:
    done = subprocess.run([sys.executable, str(DEPLOY / "bench_proxy.py"), "--requests", "12",
                           "--concurrency", "2", "--workers", "1"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = done.stdout
    for case in CASES:
        # once in the latency table, once in the CPU table; each row has numbers for both proxies
        rows = [line for line in report.splitlines() if line.startswith(case)]
        assert len(rows) == 2, report
        assert all(line.count("|") >= 3 for line in rows), report
    assert "goal, 1 KB prompt, AI host: guard's total CPU per request <= 1.5x mitmdump's" in report
    assert "goal, 20 KB prompt, AI host" in report
    assert "CPU per request" in report
    # the CPU columns cover every guard process: the worker (--workers 1) and the audit writer were found
    assert "guard proxy processes: 1 proxy, 1 inspection worker(s), 1 audit writer(s)" in report
    cpu_row = [line for line in report.splitlines() if line.startswith(CASES[0])][1]
    proxy, workers, audit, total = (float(x) for x in cpu_row.split("|")[2].split())
    assert abs(proxy + workers + audit - total) < 0.02


def test_a_baseline_checkout_runs_beside_this_one_taking_turns() -> None:
    """``--baseline`` (here this checkout itself) adds a side; ``--rounds`` lets the sides take turns."""
    done = subprocess.run([sys.executable, str(DEPLOY / "bench_proxy.py"), "--requests", "8",
                           "--concurrency", "2", "--workers", "1", "--rounds", "2",
                           "--baseline", str(DEPLOY.parent)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = done.stdout
    assert "2 rounds per case" in report and f"=== baseline: {DEPLOY.parent}" in report
    assert "baseline: guard proxy processes: 1 proxy, 1 inspection worker(s), 1 audit writer(s)" in report
    for case in CASES:  # both guard sides' latency and CPU tables
        assert len([line for line in report.splitlines() if line.startswith(case)]) == 4, report
    # each side ran every case twice
    assert done.stderr.count("baseline 1 KB prompt, AI host") == 2, done.stderr[-3000:]


def test_profile_tops_read_py_spys_collapsed_stacks() -> None:
    sys.path.insert(0, str(DEPLOY))
    from bench_proxy import profile_tops

    collapsed = ("main (guard/cli.py:1);run (asyncio/runners.py:2);request (guard/addon.py:10) 3\n"
                 "main (guard/cli.py:1);run (asyncio/runners.py:2);select (selectors.py:5) 1\n")
    tops = profile_tops(collapsed)
    assert "4 samples" in tops
    assert " 75.0%  request (guard/addon.py)" in tops  # inclusive, guard's own (the CLI root left out)
    assert "main (guard/cli.py)" not in tops.split("most samples in")[0]
    assert " 25.0%  select (selectors.py)" in tops.split("most samples in")[1]
