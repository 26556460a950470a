"""Service registrations a recreated container leaves behind in the stack's Consul.

An OpenLMIS service registers itself at start under an ID kept in its container
(consul/registration.js: `.consul_service_id~`), and nothing deregisters it when the
container goes: openlmis-service-base v7 `run.sh` runs java under a shell, which ignores the
SIGTERM of `docker stop`. A recreated container registers anew, and nginx's template routes to
every instance of a service, the old address too, which Docker may since have given to
another container; diagnostics reports the old instance's critical check. Upstream's own
deployment scripts avoid this by `down` then `up`, which restarts everything.

So after `up`, while the health gate waits, deploy deregisters every instance that is not the
newest of its service (one container per service in these stacks) or whose address is no
running container of the stack. The pure part is `stale` (shared with the swarm's own
tidying, ops.host.consul_tidy); Consul is asked on the host, at the port the stack publishes
it on.
"""

from __future__ import annotations

import json
from typing import Any

from ops.host.consul_tidy import stale
from ops.host.remote import Remote, sh

CONSUL = "http://127.0.0.1:8500"


def tidy(remote: Remote, project: str) -> list[str]:
    """Deregister the stale instances of the stack's services; their IDs. Nothing when Consul
    does not answer on the host (a stack without it, or not up yet)."""
    names = remote.run(f"curl -fsS -m 5 {CONSUL}/v1/catalog/services || true",
                       what="reading Consul's catalog")
    try:
        services = sorted(name for name in json.loads(names) if name != "consul")
    except ValueError:
        return []
    out = remote.run(_read_command(project, services), what="reading Consul's registrations")
    instances, addresses = _parse(out)
    gone = stale(instances, addresses)
    if gone:
        remote.run(" && ".join(f"curl -fsS -m 5 -X PUT {CONSUL}/v1/agent/service/deregister/"
                               f"{sh(service_id)} >/dev/null" for service_id in gone),
                   what="deregistering stale service instances")
    return gone


def _read_command(project: str, services: list[str]) -> str:
    """Each service's instances (`instances\\tNAME\\tJSON`, on one line: a JSON string holds
    no raw newline), then the running containers' addresses (`address\\tIP`)."""
    reads = "".join(f"printf 'instances\\t%s\\t' {sh(name)}; "
                    f"curl -fsS -m 5 {CONSUL}/v1/health/service/{sh(name)} | tr -d '\\n'; echo; "
                    for name in services)
    return (reads + f"docker ps -q --filter label=com.docker.compose.project={sh(project)} | "
            "xargs -r docker inspect -f "
            "'{{range .NetworkSettings.Networks}}{{printf \"address\\t%s\\n\" .IPAddress}}{{end}}'")


def _parse(out: str) -> tuple[dict[str, list[dict[str, Any]]], set[str]]:
    instances: dict[str, list[dict[str, Any]]] = {}
    addresses = set()
    for line in out.splitlines():
        kind, _, rest = line.partition("\t")
        if kind == "instances":
            name, _, data = rest.partition("\t")
            try:
                instances[name] = json.loads(data)
            except ValueError:
                continue
        elif kind == "address" and rest:
            addresses.add(rest)
    return instances, addresses
