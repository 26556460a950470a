"""`inv lab.rehearse`, what `make lab` ends with: the whole lifecycle on the Reference
Distribution's double, every step passing.

It runs once here (about five minutes): the steps are written to run again on the same lab,
as `make lab` twice does, but a second run would cost the suite as much again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ops.config import ROOT
from ops.lab.lab import Lab
from ops.lab.rehearsal import STEPS


def test_rehearsal_passes_every_step(lab: Lab) -> None:
    inv = Path(sys.executable).parent / "inv"
    done = subprocess.run([str(inv), "lab.rehearse"], cwd=ROOT, capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert f"all {len(STEPS)} steps passed" in done.stdout
    assert "FAILED" not in done.stdout
