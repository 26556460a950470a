"""The lab tier: a lab of its own (network, emulator, PostgreSQL, hosts), shared by the tests.

OPS_LAB_DIR and OPS_LAB_NAME point every part of the toolkit at it. Images are cached across
runs; containers, network and files are removed at the end, unless OPS_TEST_KEEP_LAB=1 (to
look at a failure: `OPS_LAB_DIR=<printed> OPS_LAB_NAME=<name> inv lab.down` afterwards).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ops.lab.lab import Lab
from ops.lab.state import LabState


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    saved = {k: os.environ.get(k) for k in ("OPS_LAB_DIR", "OPS_LAB_NAME")}
    name = os.environ.get("OPS_TEST_LAB_NAME", "openlmis-test")
    state = LabState(dir=tmp_path_factory.mktemp("lab"), name=name)
    os.environ.update(OPS_LAB_DIR=str(state.dir), OPS_LAB_NAME=state.name)
    lab = Lab.connect(state)
    lab.down()
    lab.up()
    yield lab
    if os.environ.get("OPS_TEST_KEEP_LAB") == "1":
        print(f"\nlab {state.name} kept in {state.dir}")
    else:
        lab.down()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
