"""What the host keeps about its stack, read for an operator: the audit log, the releases,
the deploy lock (and breaking a stale one). Each is one command over deploy's connection."""

from __future__ import annotations

from dataclasses import dataclass

from ops.config import Environment
from ops.errors import OpsError
from ops.stack import audit, lock, release_list
from ops.stack.deploy import session
from ops.stack.release_list import HostRelease


def audit_log(env: Environment, lines: int) -> list[dict[str, str]]:
    """The audit log's last `lines` entries, newest first."""
    with session(env) as s:
        return audit.parse(s.remote.run(audit.read_command(lines), what="reading the audit log"))


@dataclass(frozen=True)
class Releases:
    address: str
    now: int  # the host's clock, seconds since the epoch
    releases: list[HostRelease]


def releases(env: Environment) -> Releases:
    """The releases on the host, newest first."""
    with session(env) as s:
        now, found = release_list.parse(s.remote.run(release_list.command(),
                                                     what="reading the releases"))
        return Releases(s.remote.address, now, found)


def lock_state(env: Environment) -> tuple[str, lock.State]:
    """The host's address and its deploy lock's state."""
    with session(env) as s:
        return s.remote.address, lock.parse_state(s.remote.run(lock.state_command(),
                                                               what="reading the deploy lock"))


def break_lock(env: Environment) -> tuple[str, lock.State]:
    """Break the deploy lock if it is stale (checked and removed in one command), writing who
    broke whose to the audit log; a live lock is refused, its holder named."""
    with session(env) as s:
        found = lock.parse_state(s.remote.run(lock.break_command(),
                                              what="breaking the deploy lock"))
        who = found.holder.describe() if found.holder else "an unknown holder"
        if found.state == "alive":
            raise OpsError(f"the deploy lock on {s.remote.address} is held by {who}, whose "
                           "connection is alive: it is not broken",
                           hint="wait for that task to finish (deploy --lock-wait SECONDS "
                           "waits for it)")
        if found.state == "broken":
            s.audit("break-lock", found.holder.release if found.holder else "", "ok",
                    holder=who)
        return s.remote.address, found
