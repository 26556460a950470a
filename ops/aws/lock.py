"""The AWS lock of an environment: one provision or destroy at a time, across machines.

It is an SSM parameter, /<prefix>/ops-lock, created only if absent: PutParameter with
Overwrite=False is atomic, so of two runs one creates it and the other gets
ParameterAlreadyExists. Its value names the holder: who, on which machine, which process, doing
what, since when. A run releases it when it ends, failed or not; only a killed process leaves
one behind. A holder on this machine whose process is gone is stale; one on another machine
cannot be checked from here, so the operator, who can look there, breaks it (`--break-lock`).
"""

from __future__ import annotations

import calendar
import getpass
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass

from botocore.exceptions import BotoCoreError, ClientError

from ops import console
from ops.aws.session import client
from ops.config import Environment
from ops.errors import OpsError

STAMP = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Holder:
    """Who holds the lock."""

    who: str
    machine: str
    pid: int
    action: str
    since: str  # UTC, STAMP

    def describe(self, now: float) -> str:
        return (f"{self.who} ({self.action}, process {self.pid} on {self.machine}) since "
                f"{self.since}, {age(self.since, now)} ago")


def parameter(env: Environment) -> str:
    return f"/{env.prefix}/ops-lock"


def age(since: str, now: float) -> str:
    """How long ago a STAMP was, as `2h 05m`, `4m 10s` or `9s` (pure)."""
    seconds = max(0, int(now - calendar.timegm(time.strptime(since, STAMP))))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def parse(value: str) -> Holder | None:
    """The holder a parameter's value names; None if it is not one of ours (pure)."""
    try:
        return Holder(**json.loads(value))
    except (ValueError, TypeError):
        return None


def stale(holder: Holder | None, machine: str, alive: bool) -> bool | None:
    """True when the holder's process is known gone, False when known running, None when it
    cannot be known from `machine` (`alive`: whether the holder's pid runs here) (pure)."""
    if holder is None or holder.machine != machine:
        return None
    return not alive


def me(action: str) -> Holder:
    machine = socket.gethostname()
    return Holder(f"{getpass.getuser()}@{machine}", machine, os.getpid(), action,
                  time.strftime(STAMP, time.gmtime()))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def held(env: Environment, action: str, *, wait: float = 0,
         break_lock: bool = False) -> Iterator[None]:
    """Hold the environment's AWS lock for `action` (provision, resize, destroy); wait up to
    `wait` seconds for another holder; break a stale or unverifiable one only with
    `break_lock`."""
    ssm, name, mine = client(env, "ssm"), parameter(env), me(action)
    seen: list[Holder | None] = [None]
    retry = f"inv {action} --env {env.name} --break-lock"

    def attempt() -> bool:
        try:
            ssm.put_parameter(Name=name, Value=json.dumps(asdict(mine)), Type="String",
                              Overwrite=False, Description="held by a provision or destroy")
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ParameterAlreadyExists":
                raise
        try:
            other = parse(ssm.get_parameter(Name=name)["Parameter"]["Value"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ParameterNotFound":  # released meanwhile
                return attempt()
            raise
        seen[0] = other
        who = other.describe(time.time()) if other else "an unknown holder"
        gone = stale(other, mine.machine, other is not None and _running(other.pid))
        if gone is False:
            return False
        if break_lock:
            console.warn(f"breaking the AWS lock of {env.name}, held by {who}")
            with suppress(ClientError):
                ssm.delete_parameter(Name=name)
            return attempt()
        if gone:
            raise OpsError(f"the AWS lock of {env.name} is stale: held by {who}, whose process "
                           "is gone", hint=f"break it: {retry}")
        return False

    acquired = attempt()
    if not acquired and wait > 0:
        with suppress(console.WaitTimeout):
            acquired = console.wait_for(f"the AWS lock of {env.name}", attempt, timeout=wait,
                                        status=lambda: seen[0].describe(time.time())
                                        if seen[0] else "")
    if not acquired:
        other = seen[0]
        who = other.describe(time.time()) if other else "an unknown holder"
        hint = "wait for it to finish, or pass --lock-wait SECONDS"
        if other is None or other.machine != mine.machine:
            hint += (f"; if no provision or destroy runs on {other.machine if other else 'it'} "
                     f"any more, break it: {retry}")
        raise OpsError(f"another run holds the AWS lock of {env.name}: {who}", hint=hint)
    try:
        yield
    finally:
        try:  # released unless someone broke it and holds it now
            if parse(ssm.get_parameter(Name=name)["Parameter"]["Value"]) == mine:
                ssm.delete_parameter(Name=name)
        except (BotoCoreError, ClientError) as exc:
            console.warn(f"the AWS lock of {env.name} was not released ({exc}): the next run "
                         f"will find it stale; break it then: {retry}")
