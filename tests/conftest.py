"""Test tiers follow the directories: tests/unit (pure), tests/aws (emulator), tests/lab (lab)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops import provider
from ops.lab.provider import LabProvider

provider.register("lab", LabProvider)

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(item.fspath).relative_to(HERE).parts[0]
        if tier in ("unit", "aws", "lab"):
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(autouse=True)
def _console_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """A task run with --json sends messages to stderr from then on: not past its test."""
    from ops import console

    monkeypatch.setattr(console, "console", console.console)
