"""The audit log on the host: one JSON line per deploy, rollback and failure.

Lines carry who, when, what and the outcome — never a setting's value.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ops.host.facts import ROOT
from ops.host.remote import sh

AUDIT_LOG = f"{ROOT}/audit.log"


def entry(who: str, action: str, release: str, result: str, **detail: str) -> dict[str, str]:
    return {"time": datetime.now(UTC).isoformat(timespec="seconds"), "who": who,
            "action": action, "release": release, "result": result, **detail}


def append_command(record: dict[str, str]) -> str:
    line = json.dumps(record, sort_keys=True)
    return f"install -d -m 0700 {ROOT}; printf '%s\\n' {sh(line)} >> {AUDIT_LOG}"


def read_command(lines: int = 50) -> str:
    return f"tail -n {int(lines)} {AUDIT_LOG} 2>/dev/null || true"
