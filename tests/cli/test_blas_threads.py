"""The guard command loads numpy's OpenBLAS with one thread, unless the operator set a number."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# The command (a cheap one: it builds no engine), then numpy and what its BLAS and the process run on.
PROBE = """
import json, os
from guard.cli import main
main(["policy", "validate", "default"])
import numpy
from threadpoolctl import threadpool_info
blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
print(json.dumps({"blas": blas, "threads": len(os.listdir("/proc/self/task"))}))
"""


def _probe(env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_numpy_loads_with_one_blas_thread_and_no_pool() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    assert _probe(env) == {"blas": [1], "threads": 1}


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenBLAS runs one thread on one core anyway")
def test_an_operators_own_setting_is_kept() -> None:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
    assert _probe(env)["blas"] == [2]
