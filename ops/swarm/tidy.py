"""The swarm managers' Consul tidying (ops.host.consul_tidy) as a systemd service: its files
and their state on a node, the changes that install, update or remove it. Pure but for `read`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ops.host.bootstrap import HostSteps
from ops.host.remote import Remote, Step, sh
from ops.plan import Action, Change

JOB = "/usr/local/lib/openlmis-ops/consul_tidy.py"
UNIT = "openlmis-consul-tidy"
UNIT_FILE = f"/etc/systemd/system/{UNIT}.service"


def files(project: str) -> dict[str, bytes]:
    """The program and its unit, by path."""
    unit = (f"[Unit]\nDescription=OpenLMIS: deregister stale Consul registrations of stack "
            f"{project}\nAfter=docker.service\n\n[Service]\nExecStart=/usr/bin/python3 {JOB} "
            f"{project}\nRestart=always\nRestartSec=5\n\n[Install]\nWantedBy=multi-user.target\n")
    return {JOB: (Path(__file__).parents[1] / "host" / "consul_tidy.py").read_bytes(),
            UNIT_FILE: unit.encode()}


def facts_command() -> str:
    return (f"for f in {sh(JOB)} {sh(UNIT_FILE)}; do echo \"$f $([ -f \"$f\" ] && sha256sum "
            f"< \"$f\" | cut -c1-64)\"; done; echo active $(systemctl is-active {UNIT})")


def read(remote: Remote) -> dict[str, str]:
    """Each file's sha256 ("" when absent) and the service's state (`active`)."""
    out = remote.run(facts_command(), what="reading the Consul tidying service")
    return dict(line.partition(" ")[::2] for line in out.splitlines())


def changes(project: str, have: dict[str, str], *, wanted: bool) -> list[Change[HostSteps]]:
    """Install or update the service where `wanted` (a manager), remove it elsewhere."""
    present = any(have.get(path) for path in (JOB, UNIT_FILE))
    if not wanted:
        return [Change(Action.DELETE, f"{UNIT}.service", "not a swarm manager (any more)",
                       payload=HostSteps((("run", remove_command()),)))] if present else []
    want = files(project)
    stale = [p for p, data in want.items() if have.get(p) != hashlib.sha256(data).hexdigest()]
    if not stale and have.get("active") == "active":
        return []
    steps: list[Step] = [("run", f"install -d -m 0755 {sh(JOB.rsplit('/', 1)[0])}")]
    steps += [("put", path, want[path], 0o644) for path in stale]
    steps.append(("run", f"systemctl daemon-reload && systemctl enable {UNIT} && "
                         f"systemctl restart {UNIT}"))
    return [Change(Action.UPDATE if present else Action.CREATE, f"{UNIT}.service",
                   "deregisters the registrations of tasks the swarm lost (leader only)",
                   payload=HostSteps(tuple(steps)))]


def remove_command() -> str:
    return (f"systemctl disable --now {UNIT} 2>/dev/null; rm -f {sh(UNIT_FILE)} {sh(JOB)} && "
            "systemctl daemon-reload")


def once_command(project: str) -> str:
    """One pass now (deploy's health gate, as `registrations.tidy` on one host)."""
    return sh("python3", JOB, project, "--once")
