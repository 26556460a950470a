"""tune-db: desired → actual → plan → apply → reboot (only when asked) → verify."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ops import console, provider
from ops.approval import Approval, granted, scope
from ops.config import Environment
from ops.db import tuning
from ops.db.pg_settings import Setting
from ops.errors import OpsError
from ops.plan import Plan


class Target(Protocol):
    """Where parameters live: an RDS parameter group, or a server's own postgresql.auto.conf."""

    instance_id: str
    rds: bool  # RDS names some parameters its own way (rds.logical_replication)

    @property
    def label(self) -> str: ...
    def instance_class(self) -> str: ...
    def settings(self) -> dict[str, Setting]: ...
    def current(self, names: list[str]) -> dict[str, str | None]: ...
    def pending_reboot(self) -> bool: ...
    def apply(self, plan: Plan) -> None: ...
    def reboot(self) -> None: ...
    def verify(self, wanted: dict[str, str]) -> list[str]: ...


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    pending_reboot: bool
    rebooted: bool


def tune(env: Environment, *, reboot: bool = False, approval: Approval | None = None) -> Outcome:
    """Bring the database's parameters to the desired ones; reboot only with `reboot`.

    A server without RDS (the lab's PostgreSQL) follows the same rules: a static parameter
    needs a restart, done only with `reboot`.
    """
    approval = approval or granted()
    target = provider.of(env).parameters(env)
    size = tuning.sizing(target.instance_class(), env.stack.name)
    settings = target.settings()
    wanted = tuning.desired(size, logical_replication=env.database.logical_replication,
                            rds=target.rds)
    tuning.check(wanted, settings, size.memory_mib)
    plan = tuning.diff(target.current(list(wanted)), wanted, settings)
    pending = any(c.payload.static for c in plan) or target.pending_reboot()
    lines = plan.changed()
    if pending and reboot:
        lines.append(f"> reboot {target.instance_id}: a short outage, to apply static parameters")
    if not approval.review(scope(env), f"{target.label}: {size.line()}", lines) \
            and approval.plan_only:
        if pending:
            console.warn("static parameters need a reboot to take effect")
        return Outcome(plan, pending, False)
    if plan:
        target.apply(plan)
        static = sum(c.payload.static for c in plan)
        console.ok(f"applied {len(plan)} parameter(s): {len(plan) - static} now, "
                   f"{static} at the next reboot")
    approval.outcome(parameters_changed=len(plan), rebooted=bool(pending and reboot))
    if pending and not reboot:
        console.warn(f"{target.instance_id} waits for a reboot to apply static parameters: "
                     f"run inv tune-db --env {env.name} --reboot")
        _verify(target, {n: v for n, v in wanted.items() if not settings[n].static})
        return Outcome(plan, True, False)
    if pending:
        console.step(f"rebooting {target.instance_id}")
        target.reboot()
    if plan or pending:
        _verify(target, wanted)
    return Outcome(plan, False, pending)


def _verify(target: Target, wanted: dict[str, str]) -> None:
    wrong = target.verify(wanted)
    if wrong:
        raise OpsError(f"{target.instance_id} does not show the wanted {', '.join(wrong)}",
                       hint="run inv tune-db --plan to see the difference")
    console.ok(f"verified {len(wanted)} parameters on {target.instance_id}")
