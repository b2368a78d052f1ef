"""The wheel is complete: installed on its own (no source tree), it finds the bundled policies, so a
policy that says ``extends: default`` loads and the default command starts with the bundled default."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHECK = """
import sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]  # the installed wheel first, then the dependencies
import guard.policy
assert guard.policy.__file__.startswith(sys.argv[1]), guard.policy.__file__
policy = guard.policy.load_policy(sys.argv[3])
assert policy.rule_for("TW_NATIONAL_ID", "external").action == "redact"
assert policy.entities["PERSON"].action == "warn"
print(policy.name, guard.policy.load_policy(None).name)
"""


def test_an_installed_wheel_carries_the_bundled_policies(tmp_path: Path) -> None:
    wheels, target = tmp_path / "wheels", tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels),
                    str(REPO)], check=True, timeout=300, capture_output=True)
    (wheel,) = wheels.glob("guard-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for name in ("default.yaml", "sensitive-cases.yaml"):
            assert archive.read(f"guard/bundled_policies/{name}") == (REPO / "policies" / name).read_bytes()
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(wheel)], check=True, timeout=300, capture_output=True)

    agency = tmp_path / "agency.yaml"
    agency.write_text("extends: default\nname: agency\nentities:\n  PERSON: {action: warn}\n",
                      encoding="utf-8")
    # -S: no site-packages processing, so the source tree's editable install cannot answer instead.
    command = [sys.executable, "-S", "-c", CHECK, str(target), sysconfig.get_paths()["purelib"], str(agency)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["agency", "default"]
