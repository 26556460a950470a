"""The deploy lock on the host: atomic (mkdir), with its holder's details, stale detection.

The holder records who, from where, when, what release — and the SSH session process that
holds it on the host: when that process is gone (connection cut, operator killed), the lock is
stale. A stale lock is reported, and broken only when asked (`--break-lock`).
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


def acquire_command(holder: Holder) -> str:
    """Take the lock, or print `held` with the holder and whether its session is alive."""
    record = json.dumps(holder.__dict__, sort_keys=True)
    return (
        f"install -d -m 0700 {ROOT}; "
        f"if mkdir {LOCK} 2>/dev/null; then printf '%s\\n' {sh(record)} > {LOCK}/holder; "
        "echo acquired; else echo held; cat "
        f"{LOCK}/holder 2>/dev/null; echo; "
        f"pid=$(sed -n 's/.*\"session_pid\": \\([0-9]*\\).*/\\1/p' {LOCK}/holder 2>/dev/null); "
        f"boot=$(sed -n 's/.*\"boot_id\": \"\\([^\"]*\\)\".*/\\1/p' {LOCK}/holder 2>/dev/null); "
        "if [ -n \"$pid\" ] && [ \"$boot\" = \"$(cat /proc/sys/kernel/random/boot_id)\" ] "
        f"&& {ssh_session('$pid')}; "
        "then echo alive; else echo stale; fi; fi"
    )


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


def release_command() -> str:
    return f"rm -rf {LOCK}"
