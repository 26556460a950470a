"""Production code knows its surroundings only through ops.provider."""

from __future__ import annotations

import re
from pathlib import Path

OPS = Path(__file__).resolve().parents[2] / "ops"
ALLOWED = {OPS / "lab", OPS / "tasks"}


def production_modules() -> list[Path]:
    return [p for p in OPS.rglob("*.py") if not any(a in p.parents for a in ALLOWED)]


def test_only_the_provider_choice_reads_the_environment_kind() -> None:
    readers = [p.relative_to(OPS).as_posix() for p in production_modules()
               if re.search(r"\benv\.kind\b", p.read_text())]
    assert readers == ["provider.py"]
