"""The distribution: one version, the toolkit's own `inv`, every requirement pinned."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ops import cli

ROOT = Path(__file__).parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pairs = (line.split("==") for line in lines if line and not line.startswith("#"))
    return {canonicalize_name(name): version for name, version in pairs}


def test_the_version_is_pyprojects_alone() -> None:
    # A stale install (pyproject.toml changed, `make` not run since) shows here.
    assert metadata.version(cli.DISTRIBUTION) == PROJECT["version"] == cli.version()


def test_the_installed_inv_is_the_toolkits() -> None:
    # Invoke installs an `inv` too: reinstalling Invoke after the toolkit would put it back.
    inv = Path(sys.executable).parent / "inv"
    out = subprocess.run([inv, "-V"], capture_output=True, text=True, check=True).stdout
    assert out == f"openlmis-ops {PROJECT['version']}\n"


def test_every_requirement_is_pinned_within_its_bounds() -> None:
    pinned = pins()
    extras = PROJECT["optional-dependencies"]
    assert set(extras) == {"test", "lab"}
    for line in [*PROJECT["dependencies"], *extras["test"], *extras["lab"]]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not in constraints.txt: run make lock"
        assert requirement.specifier.contains(pinned[name]), (name, pinned[name])
