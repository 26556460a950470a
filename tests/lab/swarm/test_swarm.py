"""The stack on a Docker Swarm of lab hosts, in a lab of its own (`make test` runs this
directory beside the lab tier, in its second process: scripts/test.sh; alone:
`OPS_TEST_LAB_NAME=openlmis-swarm .venv/bin/pytest tests/lab/swarm`).

First runbook 12 as an operator follows it, from one deployed host: grow to three nodes, see
them, shrink back to one. Then the swarm variant of the rehearsal (`inv lab.rehearse --swarm`):
three nodes from nothing, spread over both zones, a restore on the swarm, a node lost and
OpenLMIS serving again by itself, the node back and deploy converging."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ops import config, targets
from ops.config import ROOT
from ops.lab.lab import Lab
from ops.lab.rehearsal import SWARM_STEPS
from tests.runbook import Block, run

RUNBOOK = ROOT / "docs/runbooks/12-grow-to-several-nodes.md"


def inv(*args: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "inv"), *args], cwd=ROOT,
                          env=environ, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of config/ whose lab environment the runbook's manual steps edit."""
    directory = tmp_path_factory.mktemp("config")
    shutil.copy(ROOT / "config/lab.yml", directory / "lab.yml")
    return directory


def count(configs: Path, nodes: int) -> None:
    path = configs / "lab.yml"
    data = yaml.safe_load(path.read_text())
    data["host"]["count"] = nodes
    path.write_text(yaml.safe_dump(data))


def test_runbook_12_grows_one_host_to_three_nodes_and_back(lab: Lab, configs: Path) -> None:
    environ = {**{k: v for k, v in os.environ.items() if k != "OPS_ENV"},
               "OPS_CONFIG_DIR": str(configs),
               "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for step in (("provision", "--env", "lab", "--yes"), ("deploy", "--env", "lab", "--yes")):
        done = inv(*step, environ=environ)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    seen: dict[str, int] = {}

    def manual(block: Block) -> None:
        if "host.count: 3" in block.commands:
            count(configs, 3)
        elif "host.count: 1" in block.commands:
            env = config.load("lab", path=configs / "lab.yml")
            seen["nodes"] = len(targets.hosts(env))
            count(configs, 1)

    run(RUNBOOK, "lab", cwd=ROOT, environ=environ, manual=manual)
    env = config.load("lab", path=configs / "lab.yml")
    assert seen["nodes"] == 3
    assert len(targets.hosts(env)) == 1
    status = inv("status", "--env", "lab", "--json", environ=environ)
    assert '"nodes": []' in status.stdout and '"referencedata"' in status.stdout


def test_the_swarm_rehearsal_passes_every_step(lab: Lab) -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "inv"), "lab.rehearse", "--swarm"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert f"all {len(SWARM_STEPS)} steps passed" in done.stdout
