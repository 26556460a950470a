"""The deploy lock on the host: atomic (mkdir), with its holder's details, stale detection.

The holder records who, from where, when, what release — and the SSH session process that
holds it on the host: when that process is gone (connection cut, operator killed), the lock is
stale. A stale lock is reported, and broken only when asked (`--break-lock`, `inv lock
--break`); `inv lock` reads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ops.host.facts import ROOT, ssh_session
from ops.host.remote import sh

LOCK = f"{ROOT}/deploy.lock"


@dataclass(frozen=True)
class Holder:
    who: str
    action: str
    release: str
    since: str
    session_pid: int
    boot_id: str

    def describe(self) -> str:
        return f"{self.who} since {self.since} ({self.action} {self.release})"


# Sets $state to `alive` while the holder's SSH session runs on this boot, else `stale`.
_CHECK = (
    f"pid=$(sed -n 's/.*\"session_pid\": \\([0-9]*\\).*/\\1/p' {LOCK}/holder 2>/dev/null); "
    f"boot=$(sed -n 's/.*\"boot_id\": \"\\([^\"]*\\)\".*/\\1/p' {LOCK}/holder 2>/dev/null); "
    "if [ -n \"$pid\" ] && [ \"$boot\" = \"$(cat /proc/sys/kernel/random/boot_id)\" ] "
    f"&& {ssh_session('$pid')}; "
    "then state=alive; else state=stale; fi"
)
_HELD = f"echo held; cat {LOCK}/holder 2>/dev/null; echo; {_CHECK}"


def acquire_command(holder: Holder) -> str:
    """Take the lock, or print `held` with the holder and whether its session is alive."""
    record = json.dumps(holder.__dict__, sort_keys=True)
    return (
        f"install -d -m 0700 {ROOT}; "
        f"if mkdir {LOCK} 2>/dev/null; then printf '%s\\n' {sh(record)} > {LOCK}/holder; "
        f"echo acquired; else {_HELD}; echo $state; fi"
    )


def state_command() -> str:
    """Print `free`, or `held`, the holder and `alive` or `stale`. Read-only."""
    return f"if [ -d {LOCK} ]; then {_HELD}; echo $state; else echo free; fi"


def break_command() -> str:
    """As `state_command`, but a stale lock is removed in the same command (`broken`): a
    live one is never touched."""
    return (f"if [ -d {LOCK} ]; then {_HELD}; "
            f"if [ \"$state\" = stale ]; then rm -rf {LOCK} && state=broken; fi; "
            "echo $state; else echo free; fi")


def parse_acquire(text: str) -> tuple[bool, Holder | None, bool]:
    """(acquired, holder, stale) from the acquire command's output."""
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and lines[0] == "acquired":
        return True, None, False
    holder = None
    for line in lines[1:]:
        if line.startswith("{"):
            try:
                holder = Holder(**json.loads(line))
            except (ValueError, TypeError):
                holder = None
    return False, holder, bool(lines) and lines[-1] == "stale"


@dataclass(frozen=True)
class State:
    """The lock as read: `free`, `alive` (held by a running session), `stale`, or `broken`
    (it was stale and is gone now); its holder when held."""

    state: str
    holder: Holder | None = None

    def as_dict(self) -> dict[str, object]:
        return {"state": self.state, "held": self.state in ("alive", "stale"),
                "stale": self.state == "stale",
                "holder": self.holder.__dict__ if self.holder else None}


def parse_state(text: str) -> State:
    """A State from `state_command`'s or `break_command`'s output."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "held":
        return State("free")
    _, holder, _ = parse_acquire(text)
    return State(lines[-1] if lines[-1] in ("alive", "stale", "broken") else "stale", holder)


def release_command() -> str:
    return f"rm -rf {LOCK}"
