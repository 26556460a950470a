"""provision against the lab's own emulator, as an operator runs it: twice, the second a no-op."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ops import config, targets
from ops.lab import hosts
from ops.lab.lab import Lab

ROOT = Path(__file__).resolve().parents[2]


def inv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "inv"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_provision_lab_twice_second_run_has_no_changes(lab: Lab) -> None:
    first = inv("provision", "--env", "lab", "--yes")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "lab provisioned" in first.stdout
    second = inv("provision", "--env", "lab", "--yes")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "no changes" in second.stdout
    status = inv("status", "--env", "lab", "--json")
    assert status.returncode == 0, status.stderr
    assert '"rds instance"' in status.stdout


def _said(run: subprocess.CompletedProcess[str]) -> str:
    return " ".join((run.stdout + run.stderr).split())


def _containers(lab: Lab) -> dict[str, str]:
    return {c.name: c.status for c in hosts.listed(lab.client, lab.state)}


def test_status_and_deploy_plan_create_and_start_nothing(lab: Lab) -> None:
    assert inv("provision", "--env", "lab", "--yes").returncode == 0
    env = config.load("lab")
    instance = targets.instance(env)["InstanceId"]
    container = hosts.find(lab.client, lab.state, instance)
    assert container is not None, "provision launched an instance without its lab host"
    container.stop(timeout=5)
    before = _containers(lab)
    try:
        status = inv("status", "--env", "lab")
        plan = inv("deploy", "--env", "lab", "--plan")
        assert _containers(lab) == before
        stopped = f"lab host {container.name} for instance {instance} is exited"
        assert status.returncode == 0, status.stdout + status.stderr
        assert stopped in _said(status)  # the stack's part, as a warning
        assert plan.returncode == 1
        assert stopped in _said(plan)
        assert "inv lab.up" in _said(plan)
    finally:
        lab.up()
    assert _containers(lab)[container.name] == "running"
