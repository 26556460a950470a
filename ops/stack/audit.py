"""The audit log on the host: one JSON line per deploy, rollback, failure and interruption.

Lines carry who, when, what and the outcome — never a setting's value. Pure: the commands that
append and read it, and the parsing of what is read (`inv audit`).
"""

from __future__ import annotations

import getpass
import json
import socket
from contextvars import ContextVar
from datetime import UTC, datetime

from ops.host.facts import ROOT
from ops.host.remote import sh

AUDIT_LOG = f"{ROOT}/audit.log"

# The task that changes things running now (as `inv` names it), set by ops.tasks.common: an
# interruption of it is written to the audit log of the host it was acting on.
TASK: ContextVar[str | None] = ContextVar("audited_task", default=None)


def who() -> str:
    """The operator, as entries name them: user@machine."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def entry(who: str, action: str, release: str, result: str, **detail: str) -> dict[str, str]:
    return {"time": datetime.now(UTC).isoformat(timespec="seconds"), "who": who,
            "action": action, "release": release, "result": result, **detail}


def interrupted(task: str, during: list[str]) -> dict[str, str]:
    """The entry of a task stopped by Ctrl-C, with what it was running on the host then."""
    return entry(who(), task, "", "interrupted",
                 during="; ".join(during) or "between commands")


def append_command(record: dict[str, str]) -> str:
    line = json.dumps(record, sort_keys=True)
    return f"install -d -m 0700 {ROOT}; printf '%s\\n' {sh(line)} >> {AUDIT_LOG}"


def read_command(lines: int = 50) -> str:
    """The last `lines` lines (nothing when no entry was written yet)."""
    return f"tail -n {int(lines)} {AUDIT_LOG} 2>/dev/null || true"


def parse(text: str) -> list[dict[str, str]]:
    """The log's lines newest first; a line that is not a JSON object is kept as `raw`."""
    records = []
    for line in reversed(text.splitlines()):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        records.append({k: str(v) for k, v in record.items()} if isinstance(record, dict)
                       else {"raw": line})
    return records


def detail(record: dict[str, str]) -> str:
    """What a record says beyond its time, who, action, release and result: `key=value`."""
    return " ".join(f"{k}={v}" for k, v in sorted(record.items())
                    if k not in ("time", "who", "action", "release", "result"))
