"""The environment's whole AWS topology: check → plan (read only) → apply → verify.

Areas run in dependency order; each reads what exists (recording ids in the context) and plans
its changes purely from that. A run applies the plan it printed, then reads again and applies
what only became known meanwhile (DNS records of new resources), then verifies. Every run
starts from what exists, so a run interrupted after any call converges on the next one.
Resources are found by tags or by names derived from the environment, never remembered
locally. Slow things start early and are waited for last: the RDS instance is created before
the host, the load balancer and mail; the certificate is requested (and, with a Route 53 zone,
its validation record upserted) before the host; only the HTTPS listener waits for it. Alarms
come after what they watch: one on the instance or the load balancer a run makes is planned
in its second pass, like the DNS records.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

import boto3

from ops import console
from ops.approval import Approval, Scope, granted
from ops.aws import (
    alarms,
    certificates,
    compute,
    database,
    dns,
    identity,
    loadbalancer,
    lock,
    mail,
    network,
    security,
    storage,
    tier,
)
from ops.aws.context import Ctx
from ops.config import Environment
from ops.errors import OpsError
from ops.plan import Change, Plan

AREAS: list[ModuleType] = [network, security, storage, identity, database, certificates, dns,
                           mail, compute, loadbalancer, alarms, dns, tier]
DB_TIMEOUT_S = 3600


@dataclass(frozen=True)
class Routed:
    """An area's payload and the area whose `apply(ctx, payload)` carries it out."""

    area: ModuleType
    payload: Any


def check(ctx: Ctx) -> None:
    """Everything that can be wrong with the input, found before the first mutating call."""
    env = ctx.env
    known = boto3.session.Session().get_available_regions("ec2")
    if env.aws.region not in known:
        raise OpsError(f"aws.region {env.aws.region!r} is not an AWS region",
                       hint="e.g. eu-west-1, us-east-1, af-south-1")
    if "account" not in ctx.ids:  # a preflight may have asked STS already
        ctx.ids["account"] = ctx.aws("sts").get_caller_identity()["Account"]
    network.check(ctx)
    compute.public_key(env)
    compute.check(ctx)
    database.check(ctx)
    dns.check(ctx)


def plan(env: Environment, *, checked: bool = True,
         account: str | None = None) -> tuple[Ctx, Plan[Routed]]:
    """Read everything (after checking the input): the changes provision would make.
    `account`: the credentials' account, when already asked of STS."""
    ctx = Ctx(env, ids={"account": account} if account else {})
    if checked:
        check(ctx)
    return ctx, merge((area, area.plan(ctx)) for area in AREAS)


def merge(planned: Iterable[tuple[ModuleType, list[Change[Any]]]]) -> Plan[Routed]:
    """The areas' changes in order, each routed to its area; a change planned twice (the dns
    area runs twice) is kept once: the same area and payload, whatever its line says."""
    found: Plan[Routed] = Plan()
    for area, changes in planned:
        for change in changes:
            routed = Routed(area, change.payload)
            if routed not in found.payloads():
                found.add(replace(change, payload=routed))
    return found


def apply(ctx: Ctx, changes: Plan[Routed]) -> None:
    """Carry out planned changes in order; ids of what they create go into ctx."""
    for change in changes:
        console.step(change.line())
        change.payload.area.apply(ctx, change.payload.payload)


def verify(env: Environment) -> tuple[Ctx, Plan[Routed]]:
    """Wait for the slow parts, then read everything back: the plan must now be empty."""
    ctx = Ctx(env)
    console.wait_for(f"database {ctx.env.prefix}-db available", lambda: database.available(ctx),
                     timeout=DB_TIMEOUT_S, interval=15, status=lambda: database.status(ctx))
    return plan(env)


def unchanged_since_review(env: Environment, approved: Plan[Routed]) -> Ctx:
    """Read again once the lock is held: another run may have changed the environment while
    this one's plan was reviewed or waited for the lock; then nothing is applied."""
    ctx, changes = plan(env)
    if changes.lines() != approved.lines():
        raise OpsError(f"{env.name} changed since its plan was shown (another provision or "
                       "destroy ran meanwhile): nothing was applied",
                       hint="run provision again to review the plan as it is now")
    return ctx


def provision(env: Environment, *, approval: Approval | None = None, lock_wait: float = 0,
              break_lock: bool = False, account: str | None = None) -> Ctx:
    """The provision task's work: show the plan; once approved, apply it, show and apply what
    only became known meanwhile, and verify, holding the AWS lock (ops.aws.lock). `account`:
    the credentials' account, when a preflight already asked STS."""
    approval = approval or granted()
    ctx, changes = plan(env, account=account)
    where = Scope(env.name, ctx.ids["account"], env.aws.region)
    if approval.review(where, f"{env.name}: {len(changes)} change(s)", changes.changed()):
        with lock.held(env, "provision", wait=lock_wait, break_lock=break_lock):
            ctx = unchanged_since_review(env, changes)
            apply(ctx, changes)
            ctx, later = plan(env, checked=False)
            approval.also("known only after applying the above:", later.changed())
            apply(ctx, later)
            ctx, left = verify(env)
        if left:
            raise OpsError("after provisioning, these still differ: " + "; ".join(left.lines()),
                           hint="run provision again; if it persists, inv status shows the state")
        console.ok(f"{env.name} provisioned")
        approval.outcome(provisioned=True)
    for text in ctx.warnings:
        console.warn(text)
    pending = dns.pending(ctx) if ctx.records else []
    if pending:
        console.plan_lines("DNS records to create at your DNS provider:",
                           [r.line() for r in pending])
        approval.outcome(dns_records_to_create=[r.line() for r in pending])
    return ctx
