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

Usage: consul_tidy.py PROJECT [--once]   (--once: one pass, whatever this node's role)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

INTERVAL = 5
CONSUL_PORT = 8500


def stale(instances: dict[str, list[dict[str, Any]]], addresses: set[str]) -> list[str]:
    """The IDs to deregister: by service name, every instance but the newest (CreateIndex),
    and any whose address no running container of the stack has."""
    found = []
    for entries in instances.values():
        services = sorted((e["Service"] for e in entries), key=lambda s: s.get("CreateIndex", 0))
        found += [s["ID"] for s in services[:-1]]
        found += [s["ID"] for s in services[-1:] if s.get("Address") not in addresses]
    return found


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout


def leader() -> bool:
    return _run("docker", "node", "inspect", "self", "--format",
                "{{.ManagerStatus.Leader}}").strip() == "true"


def live(project: str) -> tuple[set[str], str | None]:
    """The addresses of the stack's running tasks on its network, and Consul's among them."""
    listed = _run("docker", "stack", "ps", project, "--filter", "desired-state=running",
                  "--no-trunc", "--format", "{{.ID}}\t{{.Name}}")
    names = dict(line.split("\t", 1) for line in listed.splitlines() if "\t" in line)
    tasks = json.loads(_run("docker", "inspect", "--type", "task", *names)) if names else []
    addresses, consul = set(), None
    for task in tasks:
        if task["Status"]["State"] != "running":
            continue
        service = names.get(task["ID"], "").rpartition(".")[0]
        for attachment in task.get("NetworksAttachments") or []:
            if attachment["Network"]["Spec"]["Name"] != f"{project}_default":
                continue
            for address in attachment.get("Addresses") or []:
                ip = address.partition("/")[0]
                addresses.add(ip)
                if service == f"{project}_consul":
                    consul = ip
    return addresses, consul


def namespace(project: str) -> str:
    """The network namespace of a container of the stack on this node."""
    found = _run("docker", "ps", "-q", "--filter", f"label=com.docker.stack.namespace={project}",
                 "--filter", f"network={project}_default").split()
    if not found:
        raise LookupError("no container of the stack runs on this node")
    pid = _run("docker", "inspect", "--format", "{{.State.Pid}}", found[0]).strip()
    return f"/proc/{pid}/ns/net"


def consul(netns: str, address: str, path: str, method: str = "GET") -> str:
    return _run("nsenter", f"--net={netns}", "curl", "-fsS", "-m", "5", "-X", method,
                f"http://{address}:{CONSUL_PORT}{path}")


def tidy(project: str) -> list[str]:
    """One pass: the stale registrations deregistered, their IDs."""
    addresses, address = live(project)
    if not address:
        return []
    netns = namespace(project)
    names = sorted(n for n in json.loads(consul(netns, address, "/v1/catalog/services"))
                   if n != "consul")
    instances = {name: json.loads(consul(netns, address, f"/v1/health/service/{name}"))
                 for name in names}
    gone = stale(instances, addresses)
    for service_id in gone:
        consul(netns, address, f"/v1/agent/service/deregister/{service_id}", "PUT")
    return gone


def main(argv: list[str]) -> int:
    project, once = argv[0], "--once" in argv[1:]
    while True:
        try:
            if once or leader():
                for service_id in tidy(project):
                    print(f"deregistered {service_id}", flush=True)
        except (subprocess.SubprocessError, LookupError, ValueError, KeyError) as exc:
            if once:
                print(f"cannot tidy: {exc}", file=sys.stderr)
                return 1
        if once:
            return 0
        time.sleep(INTERVAL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
