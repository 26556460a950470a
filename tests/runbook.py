"""Runbooks as tests: extract the fenced commands of a Markdown runbook and run them.

A block fenced as ```sh is run; ```sh manual marks a step that happens outside (a registrar,
the AWS console) and is skipped, or done the lab's way by a test that is handed it. `--env NAME`
in a command is replaced by the test's environment. The commands run as an operator runs them:
at a terminal, answering each confirmation with the environment's name. A command ending in
`--plan` exits 2 when changes are pending, which is what the runbook asks to look at, not a
failure.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^```(\S*)([^\n]*)\n(.*?)^```", re.M | re.S)
_HEADING = re.compile(r"^#+ (.*)$", re.M)
_ENV = re.compile(r"--env[ =]\S+")
_PLAN = re.compile(r"^(\s*inv .*--plan)\s*$", re.M)


@dataclass(frozen=True)
class Block:
    line: int
    commands: str
    manual: bool
    heading: str = ""  # of the section the block is in


def extract(text: str) -> list[Block]:
    """Every sh block of a runbook, in order, with its line number and section heading."""
    fences = list(_FENCE.finditer(text))
    headings = [h for h in _HEADING.finditer(text)
                if not any(f.start() < h.start() < f.end() for f in fences)]
    return [
        Block(text.count("\n", 0, m.start()) + 1, m.group(3), "manual" in m.group(2).split(),
              next((h.group(1) for h in reversed(headings) if h.start() < m.start()), ""))
        for m in fences
        if m.group(1) in ("sh", "bash")
    ]


def for_env(commands: str, env: str) -> str:
    return _PLAN.sub(r"\1 || [ $? -eq 2 ]", _ENV.sub(f"--env {env}", commands))


def run(path: Path, env: str, *, cwd: Path, environ: dict[str, str], timeout: float = 900,
        manual: Callable[[Block], None] = lambda block: None) -> None:
    """Run a runbook's commands in order; AssertionError naming the first one that fails.
    Each manual step is handed to `manual` when it is reached."""
    for block in extract(path.read_text()):
        if block.manual:
            manual(block)
            continue
        script = for_env(block.commands, env)
        leader, terminal = pty.openpty()
        os.write(leader, f"{env}\n".encode() * 20)  # typed ahead: one per confirmation
        try:
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=environ,
                stdin=terminal, capture_output=True, text=True, timeout=timeout,
            )
        finally:
            os.close(leader)
            os.close(terminal)
        assert done.returncode == 0, (
            f"{path.name}:{block.line}: exit {done.returncode} from\n{script}\n"
            f"--- output ---\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
