"""Stale service registrations in the stack's Consul, deregistered as they appear on a swarm.

Standard library only: every swarm manager runs this file with its own python3, under systemd
(openlmis-consul-tidy.service, installed by deploy: ops.swarm.tidy); only the swarm's leader
acts, every INTERVAL seconds. The toolkit imports `stale` from here too (ops.stack.registrations).

An OpenLMIS service registers itself in Consul once, as it starts, and nothing deregisters it
when its container goes (ops.stack.registrations says why). On one host deploy tidies after
`up`. On a swarm a task also goes when its node is lost: the swarm starts it again on another
node, where it registers anew, and the lost task's registration stays, its check critical, so
diagnostics answers 503 and nginx routes to an address nobody serves. Nobody runs a command
then, so this program does: the live tasks' addresses are the swarm's own record (the tasks
the managers know to be running, on the stack's network), and Consul is asked from inside the
network namespace of one of the stack's containers on this node (`nsenter`), since a swarm
publishes no Consul port (ops.stack.swarm_stack).

Consul itself is one task (upstream runs one `-server -bootstrap`, its catalog in the
container): when its node is lost, the swarm starts it afresh elsewhere, with an empty catalog,
and no service registers again by itself (consul/registration.js runs once, at start). So the
services Consul was seen to hold are remembered, and one whose registration is gone while its
task has run past GRACE_S is restarted (`docker service update --force`): it registers as it
starts.

Usage: consul_tidy.py PROJECT [--once]   (--once: one pass, whatever this node's role)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

INTERVAL = 5
CONSUL_PORT = 8500
GRACE_S = 60  # a task running this long without its registration lost it
STATE = Path("/var/lib/openlmis-ops/consul-services.json")  # Consul name → swarm service


def stale(instances: dict[str, list[dict[str, Any]]], addresses: set[str]) -> list[str]:
    """The IDs to deregister: by service name, every instance but the newest (CreateIndex),
    and any whose address no running container of the stack has."""
    found = []
    for entries in instances.values():
        services = sorted((e["Service"] for e in entries), key=lambda s: s.get("CreateIndex", 0))
        found += [s["ID"] for s in services[:-1]]
        found += [s["ID"] for s in services[-1:] if s.get("Address") not in addresses]
    return found


def lost(remembered: dict[str, str], registered: set[str], since: dict[str, float],
         now: float) -> list[str]:
    """The swarm services to restart (pure): each was seen registered in Consul (`remembered`:
    Consul name → swarm service), is registered no more, and runs a task that has been
    running for GRACE_S, past the seconds a starting service takes to register."""
    return sorted({service for name, service in remembered.items()
                   if name not in registered and service in since
                   and now - since[service] >= GRACE_S})


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout


def leader() -> bool:
    return _run("docker", "node", "inspect", "self", "--format",
                "{{.ManagerStatus.Leader}}").strip() == "true"


def live(project: str) -> tuple[dict[str, str], dict[str, float]]:
    """The stack's running tasks on its network: each address's swarm service, and each
    service's oldest running task's start (epoch seconds)."""
    listed = _run("docker", "stack", "ps", project, "--filter", "desired-state=running",
                  "--no-trunc", "--format", "{{.ID}}\t{{.Name}}")
    names = dict(line.split("\t", 1) for line in listed.splitlines() if "\t" in line)
    tasks = json.loads(_run("docker", "inspect", "--type", "task", *names)) if names else []
    services: dict[str, str] = {}
    since: dict[str, float] = {}
    for task in tasks:
        if task["Status"]["State"] != "running":
            continue
        service = names.get(task["ID"], "").rpartition(".")[0]
        started = datetime.fromisoformat(task["Status"]["Timestamp"][:26].rstrip("Z")).replace(
            tzinfo=UTC).timestamp()
        since[service] = min(since.get(service, started), started)
        for attachment in task.get("NetworksAttachments") or []:
            if attachment["Network"]["Spec"]["Name"] == f"{project}_default":
                services |= {a.partition("/")[0]: service for a in attachment.get("Addresses", [])}
    return services, since


def namespace(project: str) -> str:
    """The network namespace of a container of the stack on this node."""
    found = _run("docker", "ps", "-q", "--filter", f"label=com.docker.stack.namespace={project}",
                 "--filter", f"network={project}_default").split()
    if not found:
        raise LookupError("no container of the stack runs on this node")
    pid = _run("docker", "inspect", "--format", "{{.State.Pid}}", found[0]).strip()
    return f"/proc/{pid}/ns/net"


class Consul:
    """The stack's Consul, asked from inside a network namespace on its network."""

    def __init__(self, netns: str, address: str) -> None:
        self.netns, self.address = netns, address

    def get(self, path: str) -> Any:
        return json.loads(self._call("GET", path))

    def deregister(self, service_id: str) -> None:
        self._call("PUT", f"/v1/agent/service/deregister/{service_id}")

    def _call(self, method: str, path: str) -> str:
        return _run("nsenter", f"--net={self.netns}", "curl", "-fsS", "-m", "5", "-X", method,
                    f"http://{self.address}:{CONSUL_PORT}{path}")


def tidy(project: str, *, acting: bool) -> list[str]:
    """One pass: what Consul holds is remembered (every manager, so a new leader knows it);
    acting (the leader), stale registrations are deregistered and services whose
    registration Consul lost are restarted. What was done, one line each."""
    services, since = live(project)
    consul_at = next((ip for ip, service in services.items()
                      if service == f"{project}_consul"), None)
    if not consul_at:
        return []
    consul = Consul(namespace(project), consul_at)
    names = sorted(n for n in consul.get("/v1/catalog/services") if n != "consul")
    instances = {name: consul.get(f"/v1/health/service/{name}") for name in names}
    known = _remembered()
    remembered = known | {name: services[e["Service"]["Address"]]
                          for name, entries in instances.items()
                          for e in entries if e["Service"].get("Address") in services}
    if remembered != known:
        STATE.parent.mkdir(parents=True, exist_ok=True)
        STATE.write_text(json.dumps(remembered, sort_keys=True))
    if not acting:
        return []
    done = []
    for service_id in stale(instances, set(services)):
        consul.deregister(service_id)
        done.append(f"deregistered {service_id}")
    for service in lost(remembered, set(names), since, time.time()):
        _run("docker", "service", "update", "--force", "--detach", service)
        done.append(f"restarted {service}: Consul lost its registration")
    return done


def _remembered() -> dict[str, str]:
    try:
        return dict(json.loads(STATE.read_text()))
    except (OSError, ValueError):
        return {}


def main(argv: list[str]) -> int:
    project, once = argv[0], "--once" in argv[1:]
    while True:
        try:
            for line in tidy(project, acting=once or leader()):
                print(line, flush=True)
        except (subprocess.SubprocessError, LookupError, ValueError, KeyError) as exc:
            if once:
                print(f"cannot tidy: {exc}", file=sys.stderr)
                return 1
        if once:
            return 0
        time.sleep(INTERVAL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
