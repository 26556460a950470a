"""Every runbook's commands, run in order against the lab: a runbook that stops working fails.

The runbooks are run in their numbered order, as an operator would meet them, on the lab
environment: provisioning, first deploy, upgrade, rollback, backup drill, disaster recovery,
tuning, secret rotation, teardown.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from ops.config import ROOT
from ops.lab.lab import Lab
from tests.runbook import run

RUNBOOKS = sorted((ROOT / "docs/runbooks").glob("[0-9][0-9]-*.md"))


def environ() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OPS_ENV"}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    return env


def test_every_runbook_is_a_numbered_file() -> None:
    assert len(RUNBOOKS) >= 10
    assert {p.name for p in (ROOT / "docs/runbooks").glob("*.md")} - {p.name for p in RUNBOOKS} \
        == {"README.md"}


@pytest.mark.parametrize("runbook", RUNBOOKS, ids=[p.stem for p in RUNBOOKS])
def test_runbook_runs_on_the_lab(runbook: Path, lab: Lab) -> None:
    run(runbook, "lab", cwd=ROOT, environ=environ())


def test_a_wrong_command_fails_the_runbook(tmp_path: Path, lab: Lab) -> None:
    broken = tmp_path / "99-broken.md"
    broken.write_text("# Broken\n\n```sh\ninv status --env prod --json >/dev/null\n"
                      "inv provison --env prod\n```\n")
    with pytest.raises(AssertionError, match=r"99-broken.md:3: exit 1 from"):
        run(broken, "lab", cwd=ROOT, environ=environ())
