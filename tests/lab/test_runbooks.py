"""Every runbook's commands, run in order against the lab: a runbook that stops working fails.

The runbooks are run in their numbered order, as an operator would meet them, on the lab
environment: provisioning, first deploy, upgrade, rollback, backup drill, disaster recovery,
tuning, secret rotation, teardown. Disaster recovery's path A is followed for real: its manual
step terminates the lab's emulated host instance (whose lab host goes with it), and the
replacement must serve the data the database kept.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from ops import config, targets
from ops.aws.session import client
from ops.config import ROOT
from ops.lab import hosts
from ops.lab.lab import Lab
from tests.runbook import Block, run

NUMBERED = sorted((ROOT / "docs/runbooks").glob("[0-9][0-9]-*.md"))
SWARM = ROOT / "docs/runbooks/12-grow-to-several-nodes.md"  # tests/lab/swarm, a lab of its own
RUNBOOKS = [path for path in NUMBERED if path != SWARM]


def environ() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OPS_ENV"}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    return env


def test_every_runbook_is_a_numbered_file() -> None:
    assert len(RUNBOOKS) >= 10 and SWARM in NUMBERED
    assert {p.name for p in (ROOT / "docs/runbooks").glob("*.md")} - {p.name for p in NUMBERED} \
        == {"README.md"}


def host_lost(lab: Lab) -> Callable[[Block], None]:
    """Runbook 08's manual steps of path A, done on the lab: a row written as the stack's role,
    then the host instance terminated (A2); once the replacement is deployed (A5's check), the
    row is there and a new instance with a new lab host serves the environment. The lab
    trusts a new host's key as it makes it (A4 is the operator's)."""
    env = config.load("lab")
    lost: dict[str, str] = {}

    def stack_db() -> Any:
        conn = lab.db_connection(env.database.name)
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(env.database.app_username)))
        return conn

    def manual(block: Block) -> None:
        if block.heading.startswith("A2."):
            with stack_db() as conn:
                conn.execute("INSERT INTO referencedata.facilities (code, name) "
                             "VALUES ('DR-A', 'written before the host was lost')")
            lost["instance"] = targets.instance(env)["InstanceId"]
            client(env, "ec2").terminate_instances(InstanceIds=[lost["instance"]])
            assert hosts.find(lab.client, lab.state, lost["instance"]) is None
        elif block.heading.startswith("A5."):
            with stack_db() as conn:
                assert conn.execute("SELECT name FROM referencedata.facilities WHERE code = "
                                    "'DR-A'").fetchall() == [("written before the host was lost",)]
            new = targets.instance(env)["InstanceId"]
            assert lost["instance"] != new and hosts.find(lab.client, lab.state, new)

    return manual


@pytest.mark.parametrize("runbook", RUNBOOKS, ids=[p.stem for p in RUNBOOKS])
def test_runbook_runs_on_the_lab(runbook: Path, lab: Lab) -> None:
    manual = host_lost(lab) if runbook.stem == "08-disaster-recovery" else lambda block: None
    run(runbook, "lab", cwd=ROOT, environ=environ(), manual=manual)


def test_a_wrong_command_fails_the_runbook(tmp_path: Path, lab: Lab) -> None:
    broken = tmp_path / "99-broken.md"
    broken.write_text("# Broken\n\n```sh\ninv status --env prod --json >/dev/null\n"
                      "inv provison --env prod\n```\n")
    with pytest.raises(AssertionError, match=r"99-broken.md:3: exit 1 from"):
        run(broken, "lab", cwd=ROOT, environ=environ())
