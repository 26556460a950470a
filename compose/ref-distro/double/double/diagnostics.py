"""openlmis/diagnostics' /api/health: the first check of each tagged service, from Consul.

As ConsulCommunicationService and SystemHealth: services from /v1/catalog/services carrying
SERVICE_TAG; for each, the checks of its first instance (/v1/health/service/<name>), the first
whose ServiceName is the service's; 503 if any is critical, else 429 if any is warning, else 200.
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

from double.web import Handler, Request, Response

STATUS = {"critical": 503, "warning": 429}


def summary(checks: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
    """The HTTP status and body of /api/health for these checks (Consul's JSON)."""
    details = [{"node": c.get("Node"), "checkId": c.get("CheckID"), "name": c.get("Name"),
                "status": str(c.get("Status", "unknown")).upper(), "notes": c.get("Notes"),
                "output": c.get("Output"), "serviceId": c.get("ServiceID"),
                "serviceName": c.get("ServiceName")} for c in checks]
    statuses = {str(c.get("Status")) for c in checks}
    code = next((STATUS[s] for s in ("critical", "warning") if s in statuses), 200)
    return code, details


def health(request: Request) -> Response:
    consul = f"{os.environ.get('CONSUL_HOST', 'consul')}:{os.environ.get('CONSUL_PORT', '8500')}"
    tag = os.environ.get("SERVICE_TAG", "openlmis-service")
    catalog = _get(consul, "/v1/catalog/services")
    checks = []
    for name in (n for n, tags in catalog.items() if tag in tags):
        entries = _get(consul, f"/v1/health/service/{name}")
        found = [c for c in (entries[0]["Checks"] if entries else [])
                 if str(c.get("ServiceName", "")).lower() == name.lower()]
        checks += found[:1]
    code, details = summary(checks)
    return Response(code, details)


def routes() -> list[tuple[str, str, Handler]]:
    return [("GET", r"/api/health", health)]


def _get(consul: str, path: str) -> Any:
    with urllib.request.urlopen(f"http://{consul}{path}", timeout=5) as answer:
        return json.load(answer)
