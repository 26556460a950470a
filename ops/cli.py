"""The `inv` command: Invoke's program under the toolkit's own name and version.

It finds tasks.py as Invoke's `inv` does; `inv -V` names this toolkit, not Invoke.
"""

from importlib import metadata

from invoke import Program

DISTRIBUTION = "openlmis-ops"


def version() -> str:
    """The installed distribution's version (pyproject.toml's [project] version)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


program = Program(name=DISTRIBUTION, binary="inv", binary_names=["inv"], version=version())
