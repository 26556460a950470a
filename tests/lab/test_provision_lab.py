"""provision against the lab's own emulator, as an operator runs it: twice, the second a no-op."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ops.lab.lab import Lab

ROOT = Path(__file__).resolve().parents[2]


def inv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "inv"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_provision_lab_twice_second_run_has_no_changes(lab: Lab) -> None:
    first = inv("provision", "--env", "lab")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "lab provisioned" in first.stdout
    second = inv("provision", "--env", "lab")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "no changes" in second.stdout
    status = inv("status", "--env", "lab", "--json")
    assert status.returncode == 0, status.stderr
    assert '"rds instance"' in status.stdout
