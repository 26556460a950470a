"""The health gate: every healthchecked service healthy, and /api/health answering via nginx.

`command` prints the containers' states and the HTTP status of /api/health in one round trip;
`assess` (pure) says whether the release is up and, if not, what it waits for.
"""

from __future__ import annotations

from dataclasses import dataclass

from ops.host.remote import sh
from ops.stack.compose import Service

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


def http_port(services: list[Service]) -> int:
    """The host port nginx publishes (80 unless the compose file maps another)."""
    for service in services:
        if service.name == "nginx":
            for port in service.ports:
                parts = port.split(":")
                if len(parts) >= 2 and parts[-1].split("/")[0] == "80":
                    return int(parts[-2])
    return 80


def command(project: str, port: int, *, domain: str, https: bool) -> str:
    """The services' states, then the health endpoint's status asked as the load balancer asks:
    for `domain`, and (with `https`) saying so in X-Forwarded-Proto. OpenLMIS's nginx with
    REQUIRE_SSL=true answers 307 in every location without that header (openlmis-nginx,
    openlmis.conf: `if ($http_x_forwarded_proto != "https") { return 307 ... }`)."""
    headers = [f"Host: {domain}", *(["X-Forwarded-Proto: https"] if https else [])]
    return (
        f"docker ps -a --filter label=com.docker.compose.project={sh(project)} --format "
        "'{{.Label \"com.docker.compose.service\"}}\t{{.State}}\t{{.Status}}'; "
        "printf 'http\\t%s\\n' \"$(curl -s -o /dev/null -m 5 -w '%{http_code}' "
        + "".join(f"-H {sh(h)} " for h in headers)
        + f"http://127.0.0.1:{port}{HEALTH_PATH})\""
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
