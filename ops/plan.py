"""Change and Plan: what every area (AWS, host, stack, database) proposes before it acts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Action(Enum):
    CREATE = "+"
    UPDATE = "~"
    DELETE = "-"
    RUN = ">"


@dataclass(frozen=True)
class Change:
    """One change, printable as one line; `data` carries what the applier needs."""

    action: Action
    target: str
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def line(self) -> str:
        text = f"{self.action.value} {self.target}"
        return f"{text}: {self.detail}" if self.detail else text


@dataclass
class Plan:
    """An ordered list of changes; empty means the actual state already is the desired one."""

    changes: list[Change] = field(default_factory=list)

    def add(self, change: Change) -> None:
        self.changes.append(change)

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def lines(self) -> list[str]:
        return [c.line() for c in self.changes] or ["no changes"]
