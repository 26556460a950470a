"""The one convention of every task that changes things.

It shows its plan under a line naming the environment, the AWS account and the region it acts
in. It applies only once approved: --yes, or the environment's name typed at a terminal;
without either it refuses. With --plan it stops after showing, and the task exits 2 when
changes are pending (Terraform's -detailed-exitcode). `record` keeps the plan and the outcome
for --json.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from ops import console
from ops.config import Environment
from ops.errors import OpsError


@dataclass(frozen=True)
class Scope:
    """Where a task acts."""

    environment: str
    account: str
    region: str

    def line(self) -> str:
        return f"environment {self.environment} · account {self.account} · region {self.region}"


def scope(env: Environment) -> Scope:
    """The environment's scope, its account asked of AWS (the credentials decide it)."""
    from ops.aws import session

    account = session.client(env, "sts").get_caller_identity()["Account"]
    return Scope(env.name, account, env.aws.region)


@dataclass
class Approval:
    """How a run may apply (--plan, --yes) and what it showed and did (for --json)."""

    plan_only: bool = False
    yes: bool = False
    pending: bool = False
    record: dict[str, Any] = field(default_factory=dict)

    def review(self, where: Scope, title: str, lines: list[str]) -> bool:
        """Show the plan; True when it is to be applied now."""
        self.pending = bool(lines)
        self.record.setdefault("scope", vars(where))
        self.record["plan"] = {"title": title, "changes": lines}
        console.say(where.line(), "dim")
        console.plan_lines(title, lines or ["no changes"])
        if not lines or self.plan_only:
            return False
        if not self.yes:
            _confirm(where, len(lines))
        return True

    def also(self, title: str, lines: list[str]) -> None:
        """Show changes that became known only while applying (Terraform's "known after
        apply"): consequences of what was approved, applied without asking again."""
        if lines:
            self.record.setdefault("after_apply", []).extend(lines)
            console.plan_lines(title, lines)

    def outcome(self, **facts: Any) -> None:
        self.record.setdefault("outcome", {}).update(facts)


def granted() -> Approval:
    """The approval of a caller that has already decided (the lab's rehearsal, tests)."""
    return Approval(yes=True)


def _confirm(where: Scope, count: int) -> None:
    if not sys.stdin.isatty():
        raise OpsError(f"refusing to apply {count} change(s) to {where.environment} without "
                       "confirmation: nobody is at a terminal to answer",
                       hint="review them with --plan, then run again with --yes")
    typed = console.ask(f"Apply {count} change(s) to {where.environment} (account "
                        f"{where.account}, region {where.region})? Type the environment's "
                        "name to go on: ")
    if typed.strip() != where.environment:
        raise OpsError("not confirmed: nothing was changed")
