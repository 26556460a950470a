"""`inv lab.rehearse`, what `make lab` ends with: the whole lifecycle, every step passing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ops.config import ROOT
from ops.lab.lab import Lab
from ops.lab.rehearsal import STEPS


def test_rehearsal_passes_every_step_and_can_run_again(lab: Lab) -> None:
    inv = Path(sys.executable).parent / "inv"
    for _ in range(2):
        done = subprocess.run([str(inv), "lab.rehearse"], cwd=ROOT, capture_output=True,
                              text=True, timeout=1200)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        assert f"all {len(STEPS)} steps passed" in done.stdout
        assert "FAILED" not in done.stdout
