"""The whole lifecycle on the lab, step by step, ending with a table of results.

Each step is a function of the shared Context returning a one-line result; a failing step
stops the run, and the steps after it are reported as not run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ops import config, console
from ops.aws.session import client
from ops.config import Environment
from ops.errors import OpsError
from ops.lab.lab import DB_PASSWORD_SECRET, Lab


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
    address = ctx.lab.database().address
    with psycopg.connect(host=address, dbname=ctx.env.database.name,
                         user=ctx.env.database.master_username,
                         password=ctx.lab.state.secret(DB_PASSWORD_SECRET),
                         connect_timeout=10) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {version[0] if version else '?'} serves {ctx.env.database.name}"


STEPS = [
    Step("lab up", lab_up),
    Step("AWS emulator", emulator_answers),
    Step("database", database_answers),
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
