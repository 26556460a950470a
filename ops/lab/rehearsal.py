"""The whole lifecycle on the lab, step by step, ending with a table of results.

Each step is a function of the shared Context returning a one-line result; a failing step
stops the run, and the steps after it are reported as not run.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ops import config, console, targets
from ops.aws import topology
from ops.aws.session import client
from ops.config import Environment
from ops.db import backup, catalog, restore, verify
from ops.db.tune import tune as tune_db
from ops.errors import OpsError
from ops.lab.lab import Lab
from ops.stack import deploy


@dataclass
class Context:
    env: Environment
    lab: Lab
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Context], str]


@dataclass(frozen=True)
class Result:
    step: str
    ok: bool | None
    detail: str
    seconds: float


def lab_up(ctx: Context) -> str:
    found = ctx.lab.up()
    return f"emulator {found['emulator']}, PostgreSQL {found['database']}"


def emulator_answers(ctx: Context) -> str:
    identity = client(ctx.env, "sts").get_caller_identity()
    return f"AWS API answers as account {identity['Account']}"


def database_answers(ctx: Context) -> str:
    with ctx.lab.db_connection(ctx.env.database.name, user=ctx.env.database.master_username,
                               connect_timeout=10) as conn:
        version, superuser = conn.execute(
            "SELECT current_setting('server_version'), rolsuper FROM pg_roles "
            "WHERE rolname = current_user").fetchone()
    if superuser:
        raise OpsError("the lab's master user is a superuser: RDS's is not")
    return (f"PostgreSQL {version} serves {ctx.env.database.name} over verified TLS, "
            "its master no superuser (as on RDS)")


def provision(ctx: Context) -> str:
    topology.provision(ctx.env)
    _, left = topology.plan(ctx.env)
    if left:
        raise OpsError("a second provision would still change: " + "; ".join(left.lines()))
    return "topology converged; a second run plans no changes"


def deploy_first(ctx: Context) -> str:
    deploy.deploy(ctx.env, name="1")
    return _serving(ctx, "1")


ITEMS = {f"PRODUCT-{i:03d}": f"Amoxicilline 500 mg, boîte n°{i}" for i in range(40)}


def write_data(ctx: Context) -> str:
    for code, name in ITEMS.items():
        _api(ctx, "POST", "/api/requisition/items", {"code": code, "name": name})
    ctx.notes["data"] = _api(ctx, "GET", "/api/requisition/items/sum")
    return f"{len(ITEMS)} items written through nginx: {ctx.notes['data']['md5'][:12]}…"


def back_up(ctx: Context) -> str:
    taken = backup.backup_db(ctx.env, method="both", reason="lab rehearsal")
    ctx.notes["backups"] = taken
    return "taken: " + ", ".join(taken)


def verify_backup(ctx: Context) -> str:
    dump = ctx.notes["backups"][0]
    result = verify.verify(ctx.env, catalog.find(ctx.env, dump))
    if not result.ok:
        raise OpsError(f"backup {dump} failed verification: {result.detail}")
    return f"{dump}: {result.detail}"


def damage_data(ctx: Context) -> str:
    for code in list(ITEMS)[:10]:
        _api(ctx, "DELETE", f"/api/requisition/items/{code}")
    _api(ctx, "POST", "/api/requisition/items", {"code": "PRODUCT-010", "name": "overwritten"})
    damaged = _api(ctx, "GET", "/api/requisition/items/sum")
    if damaged == ctx.notes["data"]:
        raise OpsError("the data did not change")
    return f"10 items deleted, 1 overwritten: {damaged['count']} left"


def restore_dump(ctx: Context) -> str:
    dump = ctx.notes["backups"][0]
    restore.restore_db(ctx.env, dump, yes=True, force=False)
    return f"restored {dump}"


def data_identical(ctx: Context) -> str:
    now = _api(ctx, "GET", "/api/requisition/items/sum")
    if now != ctx.notes["data"]:
        raise OpsError(f"data differs after the restore: {now} != {ctx.notes['data']}")
    return f"{now['count']} items, checksum identical to before the damage"


def tune_database(ctx: Context) -> str:
    tune_db(ctx.env, reboot=True, confirm=lambda question: True)
    again = tune_db(ctx.env)
    if again.plan or again.pending_reboot:
        raise OpsError("a second tune-db would still change: " + "; ".join(again.plan.lines()))
    return "parameters applied (restart where static); a second run plans no changes"


def new_release(ctx: Context) -> str:
    deploy.deploy(ctx.env, name="2")
    return _serving(ctx, "2")


def broken_release(ctx: Context) -> str:
    try:
        deploy.deploy(ctx.env, name="broken")
    except deploy.RolledBack as exc:
        return f"refused by the health gate, rolled back to {exc.restored}: " + _serving(ctx, "2")
    raise OpsError("the broken release passed its health gate")


def _serving(ctx: Context, release: str) -> str:
    health = _api(ctx, "GET", "/api/health")
    if health.get("release") != release or health.get("status") != "UP":
        raise OpsError(f"expected release {release} up, /api/health says {health}")
    return f"release {release} serves /api/health: UP"


def _api(ctx: Context, method: str, path: str, body: dict[str, str] | None = None) -> Any:
    address = ctx.notes.setdefault("address", targets.host(ctx.env).address)
    request = urllib.request.Request(
        f"http://{address}{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        return json.load(exc)


STEPS = [
    Step("lab up", lab_up),
    Step("AWS emulator", emulator_answers),
    Step("database", database_answers),
    Step("provision", provision),
    Step("deploy release 1", deploy_first),
    Step("write data through the stack", write_data),
    Step("backup (snapshot + dump)", back_up),
    Step("verify the backup", verify_backup),
    Step("damage the data", damage_data),
    Step("restore the dump", restore_dump),
    Step("data identical", data_identical),
    Step("tune the database", tune_database),
    Step("roll out release 2", new_release),
    Step("broken release rolled back", broken_release),
]


def rehearse(steps: list[Step] | None = None) -> list[Result]:
    """Run every step in order; stop at the first failure."""
    ctx = Context(env=config.load("lab"), lab=Lab.connect())
    results: list[Result] = []
    for step in steps or STEPS:
        if results and not results[-1].ok:
            results.append(Result(step.name, None, "not run (an earlier step failed)", 0.0))
            continue
        console.step(step.name)
        start = time.monotonic()
        try:
            detail, ok = step.run(ctx), True
        except OpsError as exc:
            detail, ok = str(exc), False
        except Exception as exc:  # a rehearsal reports every failure in its table
            detail, ok = f"{type(exc).__name__}: {exc}", False
        results.append(Result(step.name, ok, detail, time.monotonic() - start))
    return results


def show(results: list[Result]) -> None:
    marks = {True: "✓ passed", False: "✗ FAILED", None: "- skipped"}
    console.table("lab rehearsal", ["step", "result", "time", "detail"],
                  [(r.step, marks[r.ok], f"{r.seconds:.1f}s", r.detail) for r in results])
