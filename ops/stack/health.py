"""The health gate: every healthchecked service healthy, and /api/health answering through
nginx, asked as the load balancer's health check asks it.

`command` prints the containers' states and the HTTP status of /api/health in one round trip;
`assess` (pure) says whether the release is up and, if not, what it waits for.
"""

from __future__ import annotations

from dataclasses import dataclass

from ops.host.remote import sh
from ops.stack.compose import Service
from ops.stack.override import HEALTH_PORT

HEALTH_PATH = "/api/health"


@dataclass(frozen=True)
class Assessment:
    healthy: bool
    waiting: dict[str, str]  # service → what it is (starting, unhealthy, exited…)

    @property
    def failed(self) -> bool:
        """Docker already judged a service unhealthy (past its start period): waiting is futile."""
        return "unhealthy" in self.waiting.values()

    def summary(self) -> str:
        return ", ".join(f"{s} {why}" for s, why in self.waiting.items()) or "all healthy"


def command(project: str) -> str:
    """The services' states, then the status of the URL the load balancer's health check asks
    (the toolkit's health service: /api/health through the stack's nginx, as a user's request
    arrives; see ops.stack.override)."""
    return (
        f"docker ps -a --filter label=com.docker.compose.project={sh(project)} --format "
        "'{{.Label \"com.docker.compose.service\"}}\t{{.State}}\t{{.Status}}'; "
        "printf 'http\\t%s\\n' \"$(curl -s -o /dev/null -m 12 -w '%{http_code}' "
        f"http://127.0.0.1:{HEALTH_PORT}/health)\""
    )


def assess(output: str, services: list[Service]) -> Assessment:
    found: dict[str, tuple[str, str]] = {}
    http = ""
    for line in output.splitlines():
        parts = line.split("\t")
        if parts[0] == "http":
            http = parts[1] if len(parts) > 1 else ""
        elif len(parts) == 3:
            found[parts[0]] = (parts[1], parts[2])
    waiting = {}
    for service in services:
        state, status = found.get(service.name, ("missing", ""))
        if state == "exited" and status.startswith("Exited (0)") and not service.healthcheck:
            continue  # a one-shot service that did its job
        if state != "running":
            waiting[service.name] = state
        elif service.healthcheck and "(healthy)" not in status:
            waiting[service.name] = "unhealthy" if "(unhealthy)" in status else "starting"
    if http != "200":
        waiting[HEALTH_PATH] = f"HTTP {http or 'no answer'}"
    return Assessment(not waiting, waiting)
