"""The toolkit's own compose file in every release, beside the stack's files, which stay as
upstream wrote them: what deploy adds to the services. Pure.

Compose reads it because the release's `.env` lists it in COMPOSE_FILE. It gives
- every service that reads settings.env the database's CA bundle, which settings.env tells the
  JDBC driver to verify the server with;
- every long-running service (one with an image, not a one-shot build) a restart policy unless
  the stack sets its own: in 3.19.2 only hapifhir has one, so after a host reboot or an
  out-of-memory kill the others would stay down until the next deploy. `unless-stopped`, so a
  service an operator (or restore-db) stopped stays stopped across a reboot.
"""

from __future__ import annotations

import yaml

from ops.stack.compose import COMPOSE_FILES, Service

NAME = "docker-compose.ops.yml"
CA_FILE = "db-ca.pem"  # in the release's directory
CA_PATH = "/etc/openlmis/db-ca.pem"  # in the services' containers
RESTART = "unless-stopped"


def render(services: list[Service]) -> str:
    spec: dict[str, dict[str, object]] = {}
    for service in services:
        if service.settings:
            spec.setdefault(service.name, {})["volumes"] = [f"./{CA_FILE}:{CA_PATH}:ro"]
        if service.image and not service.restart:
            spec.setdefault(service.name, {})["restart"] = RESTART
    return ("# Written by inv deploy: the toolkit's additions to the stack's own files.\n"
            + yaml.safe_dump({"services": spec}, sort_keys=True))


def compose_file(files: dict[str, bytes]) -> str:
    """COMPOSE_FILE for the release's `.env`: the stack's files present, then this one."""
    return ":".join([*(name for name in COMPOSE_FILES if name in files), NAME])
