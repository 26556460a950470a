"""gliderlabs/consul-server's stand-in: the part of Consul's HTTP API OpenLMIS uses, on 8500.

- services register themselves (consul/registration.js): PUT /v1/agent/service/register,
  PUT /v1/agent/service/deregister/<id>, PUT and DELETE /v1/kv/resources/<path>, after
  GET /v1/catalog/services answers 200;
- nginx's template reads GET /v1/catalog/services, GET /v1/health/service/<name> and
  GET /v1/kv/resources?recurse;
- diagnostics reads GET /v1/catalog/services and GET /v1/health/service/<name>;
- the compose healthcheck of hashicorp/consul (ref-distro after v3.19.2) curls
  GET /v1/status/leader: the Raft leader's address, this single server's.
HTTP checks run at their interval: critical until the first 2xx (429 is a warning), as Consul.
Blocking queries (?index=) are answered at once; the state lives in memory only.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from double.web import Request, Response, serve

NODE = socket.gethostname()
ADDRESS = socket.gethostbyname(NODE)


class Catalog:
    """Services, their checks and the KV store, behind one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.index = 1
        self.services: dict[str, dict[str, Any]] = {}
        self.checks: dict[str, dict[str, Any]] = {}
        self.kv: dict[str, tuple[bytes, int]] = {}

    def register(self, request: Request) -> Response:
        body = {k.lower(): v for k, v in json.loads(request.body or b"{}").items()}
        name = body.get("name") or ""
        if not name:
            return Response(400, "Missing service name")
        service = {"ID": body.get("id") or name, "Service": name, "Tags": body.get("tags") or [],
                   "Address": body.get("address") or "", "Port": int(body.get("port") or 0)}
        with self.lock:
            self.index += 1
            self.services[service["ID"]] = service
            check = {k.lower(): v for k, v in (body.get("check") or {}).items()}
            self.checks.pop(f"service:{service['ID']}", None)
            if check.get("http"):
                self.checks[f"service:{service['ID']}"] = {
                    "Node": NODE, "CheckID": f"service:{service['ID']}",
                    "Name": f"Service '{name}' check", "Status": "critical", "Notes": "",
                    "Output": "", "ServiceID": service["ID"], "ServiceName": name,
                    "http": check["http"], "interval": _seconds(check.get("interval", "10s")),
                    "next": 0.0}
        return Response(200)

    def deregister(self, request: Request) -> Response:
        with self.lock:
            self.index += 1
            self.services.pop(request.match["id"], None)
            self.checks.pop(f"service:{request.match['id']}", None)
        return Response(200)

    def catalog_services(self, request: Request) -> Response:
        with self.lock:
            found: dict[str, list[str]] = {"consul": []}
            for service in self.services.values():
                tags = found.setdefault(service["Service"], [])
                tags += [t for t in service["Tags"] if t not in tags]
            return self._answer(found)

    def health_service(self, request: Request) -> Response:
        name = request.match["name"]
        with self.lock:
            entries = []
            for service in self.services.values():
                if service["Service"] != name:
                    continue
                checks = [_public(c) for c in self.checks.values()
                          if c["ServiceID"] == service["ID"]]
                if "passing" in request.query and any(c["Status"] != "passing" for c in checks):
                    continue
                entries.append({
                    "Node": {"Node": NODE, "Address": ADDRESS},
                    "Service": {**service, "Address": service["Address"] or ADDRESS},
                    "Checks": [{"Node": NODE, "CheckID": "serfHealth", "Name": "Serf Health Status",
                                "Status": "passing", "Notes": "",
                                "Output": "Agent alive and reachable",
                                "ServiceID": "", "ServiceName": ""}, *checks]})
            return self._answer(entries)

    def kv_put(self, request: Request) -> Response:
        with self.lock:
            self.index += 1
            self.kv[request.match["key"]] = (request.body, self.index)
        return Response(200, True)

    def kv_delete(self, request: Request) -> Response:
        key = request.match["key"]
        with self.lock:
            self.index += 1
            for found in [k for k in self.kv if k == key or ("recurse" in request.query
                                                               and k.startswith(key))]:
                del self.kv[found]
        return Response(200, True)

    def kv_get(self, request: Request) -> Response:
        key = request.match["key"]
        with self.lock:
            pairs = [{"LockIndex": 0, "Key": k, "Flags": 0, "CreateIndex": i, "ModifyIndex": i,
                      "Value": base64.b64encode(v).decode() if v else None}
                     for k, (v, i) in sorted(self.kv.items())
                     if k == key or ("recurse" in request.query and k.startswith(key))]
            if not pairs:
                return Response(404, b"", {"X-Consul-Index": str(self.index)})
            return self._answer(pairs)

    def run_checks(self) -> None:
        """Run each HTTP check when due, forever."""
        while True:
            now = time.monotonic()
            with self.lock:
                due = [c for c in self.checks.values() if c["next"] <= now]
                for check in due:
                    check["next"] = now + check["interval"]
            for check in due:
                status, output = _probe(check["http"])
                with self.lock:
                    if check["Status"] != status:
                        self.index += 1
                    check["Status"], check["Output"] = status, output
            time.sleep(0.5)

    def _answer(self, data: object) -> Response:
        return Response(200, data, {"X-Consul-Index": str(self.index),
                                    "X-Consul-Knownleader": "true"})


def _public(check: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in check.items() if k[0].isupper()}


def _seconds(interval: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", interval.strip())
    if not match:
        return 10.0
    return float(match[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match[2]]


def _probe(url: str) -> tuple[str, str]:
    """An HTTP check's status and output, as Consul words them."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            code, reason, body = answer.status, answer.reason, answer.read(4096)
    except urllib.error.HTTPError as exc:
        code, reason, body = exc.code, exc.reason, exc.read(4096)
    except (OSError, ValueError) as exc:
        return "critical", f'Get "{url}": {exc}'
    status = "passing" if 200 <= code < 300 else "warning" if code == 429 else "critical"
    return status, f"HTTP GET {url}: {code} {reason} Output: {body.decode(errors='replace')}"


def main(args: list[str]) -> None:
    """Serve the API (Consul's own flags, such as -server -bootstrap, are accepted)."""
    catalog = Catalog()
    threading.Thread(target=catalog.run_checks, daemon=True).start()
    print(f"==> Consul stand-in agent running! node {NODE}, flags {' '.join(args)}", flush=True)
    serve(8500, [
        ("PUT", r"/v1/agent/service/register", catalog.register),
        ("PUT", r"/v1/agent/service/deregister/(?P<id>.+)", catalog.deregister),
        ("GET", r"/v1/status/leader", lambda _: Response(
            200, json.dumps(f"{ADDRESS}:8300").encode(), {"Content-Type": "application/json"})),
        ("GET", r"/v1/catalog/services", catalog.catalog_services),
        ("GET", r"/v1/health/service/(?P<name>[^/]+)", catalog.health_service),
        ("PUT", r"/v1/kv/(?P<key>.*)", catalog.kv_put),
        ("DELETE", r"/v1/kv/(?P<key>.*)", catalog.kv_delete),
        ("GET", r"/v1/kv/(?P<key>.*)", catalog.kv_get),
    ])
