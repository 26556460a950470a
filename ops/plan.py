"""Change and Plan: what every area (AWS, host, stack, database) proposes before it acts.

A change has two faces: `line()` is what the operator reads, `payload` is what apply acts on.
Each area types its own payloads (small frozen dataclasses or an Enum) and its apply code reads
only them, so rewording a plan line never changes what apply does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

P = TypeVar("P")
P_co = TypeVar("P_co", covariant=True)  # a frozen Change[A] is a Change[A | B]


class Action(Enum):
    CREATE = "+"
    UPDATE = "~"
    DELETE = "-"
    RUN = ">"


@dataclass(frozen=True)
class Change(Generic[P_co]):
    """One change, printable as one line; `payload` carries all the applier needs."""

    action: Action
    target: str
    detail: str = ""
    payload: P_co = field(kw_only=True)

    def line(self) -> str:
        text = f"{self.action.value} {self.target}"
        return f"{text}: {self.detail}" if self.detail else text


@dataclass
class Plan(Generic[P]):
    """An ordered list of changes; empty means the actual state already is the desired one."""

    changes: list[Change[P]] = field(default_factory=list)

    def add(self, change: Change[P]) -> None:
        self.changes.append(change)

    def __iter__(self) -> Iterator[Change[P]]:
        return iter(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def payloads(self) -> list[P]:
        """What apply acts on, in order."""
        return [c.payload for c in self.changes]

    def changed(self) -> list[str]:
        """Each change's line; empty when there is nothing to do."""
        return [c.line() for c in self.changes]

    def lines(self) -> list[str]:
        return [c.line() for c in self.changes] or ["no changes"]
