"""Watching the AWS calls the toolkit makes: count the mutating ones, or fail one on purpose.

Used by tests (zero mutating calls on a second run; interruption after the k-th mutating
call) and by anything that wants to prove a read-only path stays read-only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ops.aws import session

READ_ONLY_PREFIXES = ("Describe", "Get", "List", "Head")


def is_mutating(operation: str) -> bool:
    """Whether an API operation (e.g. 'CreateVpc') may change something."""
    return not operation.startswith(READ_ONLY_PREFIXES)


class InjectedFailure(Exception):
    """Raised instead of the mutating call a CallLog was told to fail."""


@dataclass
class CallLog:
    """Every call made while watching, as 'service.Operation'; optionally fail the k-th mutation."""

    fail_at: int | None = None
    calls: list[str] = field(default_factory=list)
    mutations: list[str] = field(default_factory=list)

    def _before_call(self, model: Any, **_: Any) -> None:
        name = f"{model.service_model.service_name}.{model.name}"
        self.calls.append(name)
        if is_mutating(model.name):
            self.mutations.append(name)
            if self.fail_at is not None and len(self.mutations) == self.fail_at:
                raise InjectedFailure(f"injected failure at mutating call {self.fail_at}: {name}")


@contextmanager
def watch(fail_at: int | None = None) -> Iterator[CallLog]:
    """Record the calls of every client made inside the block (see CallLog)."""
    log = CallLog(fail_at=fail_at)
    remove = session.add_hook("before-call", log._before_call)
    try:
        yield log
    finally:
        remove()
