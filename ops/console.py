"""Operator-facing output: messages, progress for every wait, summaries, JSON.

Everything printed passes through the redactor, so a secret registered with `redact()` never
reaches the terminal, even inside an error message or a remote command's output.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ops.errors import OpsError

T = TypeVar("T")

_secrets: set[str] = set()
console = Console(highlight=False)


def redact(secret: str) -> None:
    """Register a secret value: from now on it is masked in everything printed."""
    if secret and len(secret) >= 4:
        _secrets.add(secret)


def scrub(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "****")
    return text


def json_mode(on: bool = True) -> None:
    """Send human output to stderr, so stdout carries machine-readable output only."""
    global console
    console = Console(highlight=False, stderr=on)


def say(text: str, style: str = "") -> None:
    """One message; never wrapped, so a plan line stays one line when output is piped."""
    console.print(escape(scrub(text)), style=style or None, soft_wrap=True)


def step(text: str) -> None:
    say(f"• {text}", "cyan")


def ok(text: str) -> None:
    say(f"✓ {text}", "green")


def warn(text: str) -> None:
    say(f"! {text}", "yellow")


def error(text: str) -> None:
    """A failure, on stderr; never wrapped, so a path or a command in it stays whole."""
    Console(stderr=True, highlight=False).print(escape(scrub(f"✗ {text}")), style="bold red",
                                                soft_wrap=True)


def ask(question: str) -> str:
    """The operator's typed answer; OpsError when nobody can answer (standard input closed)."""
    console.print(escape(scrub(question)), end="", soft_wrap=True)  # stderr under --json
    try:
        return input()
    except EOFError:
        raise OpsError("no answer: standard input is closed",
                       hint="answer in a terminal, or pass --yes") from None


def plan_lines(title: str, lines: Iterable[str]) -> None:
    say(title, "bold")
    for line in lines:
        style = {"+": "green", "-": "red", "~": "yellow"}.get(line[:1], "")
        say(f"  {line}", style)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    t = Table(title=title, title_justify="left")
    for column in columns:
        t.add_column(column, overflow="fold")
    for row in rows:
        t.add_row(*(escape(scrub("" if v is None else str(v))) for v in row))
    console.print(t)


def emit_json(data: Any) -> None:
    sys.stdout.write(scrub(json.dumps(data, indent=2, sort_keys=True, default=str)) + "\n")


class WaitTimeout(OpsError):
    """A wait gave up: `what` was not there after `timeout` seconds."""

    def __init__(self, what: str, timeout: float) -> None:
        super().__init__(f"timed out after {timeout:.0f}s waiting for {what}",
                         hint="check the resource's state, then run the command again: it resumes")
        self.what = what
        self.timeout = timeout


def wait_for(
    what: str,
    check: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 2.0,
    status: Callable[[], str] | None = None,
) -> T:
    """Poll `check` until it returns a truthy value, showing progress; WaitTimeout on timeout."""
    start = time.monotonic()
    with console.status(escape(f"waiting for {what}")) as spinner:
        while True:
            result = check()
            elapsed = time.monotonic() - start
            if result:
                ok(f"{what} ({elapsed:.0f}s)")
                return result
            if elapsed > timeout:
                raise WaitTimeout(what, timeout)
            detail = f" — {scrub(status())}" if status else ""
            spinner.update(escape(f"waiting for {what}: {elapsed:.0f}s of {timeout:.0f}s{detail}"))
            time.sleep(interval)
