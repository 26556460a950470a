"""What consul/registration.js does at a service's start (`node consul/registration.js -c
register`): wait for Consul, register the service (with its check), then its paths in the KV
store under resources/, each valued with the service's name."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable

from double.specs import Spec

ID_FILE = ".consul_service_id~"  # in the working directory, as upstream: kept across restarts


def consul() -> str:
    return f"{os.environ.get('CONSUL_HOST', 'consul')}:{os.environ.get('CONSUL_PORT', '8500')}"


def register(spec: Spec) -> None:
    """Register `spec`'s service and paths; on failure say why and go on, as run.sh does."""
    try:
        _await_consul()
    except OSError as exc:
        print(f"[ERROR]:\nThe Consul service has not started up properly. ({exc})", flush=True)
        return
    print("Registering service...", flush=True)
    service_id = _service_id(spec.name)
    address = _own_address()
    service = {"ID": service_id, "Name": spec.name, "Port": spec.port, "Address": address,
               "Tags": [os.environ.get("SERVICE_TAG", "openlmis-service")],
               "EnableTagOverride": False}
    if spec.check:
        service["check"] = {"interval": "10s", "http": f"http://{address}:{spec.port}"
                                                       "/actuator/health"}
    _retry(lambda: _put("/v1/agent/service/register", json.dumps(service).encode()))
    for path in spec.paths:
        _retry(lambda path=path: _put(f"/v1/kv/resources/{path}", spec.name.encode()))
    print("Registration finished!", flush=True)


def _await_consul() -> None:
    for attempt in range(5):
        time.sleep(1)
        try:
            with urllib.request.urlopen(f"http://{consul()}/v1/catalog/services", timeout=5):
                return
        except OSError:
            if attempt == 4:
                raise


def _put(path: str, data: bytes) -> None:
    request = urllib.request.Request(f"http://{consul()}{path}", data=data, method="PUT")
    with urllib.request.urlopen(request, timeout=5):
        pass


def _retry(action: Callable[[], None]) -> None:
    for _ in range(10):
        try:
            action()
            return
        except OSError:
            time.sleep(0.5)


def _service_id(name: str) -> str:
    try:
        with open(ID_FILE) as handle:
            return handle.read()
    except OSError:
        found = f"{uuid.uuid4()}-{name}"
        with open(ID_FILE, "w") as handle:
            handle.write(found)
        return found


def _own_address() -> str:
    """This container's address on the network Consul is on (ip.address() upstream)."""
    host = os.environ.get("CONSUL_HOST", "consul")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((socket.gethostbyname(host), 8500))
        return probe.getsockname()[0]
