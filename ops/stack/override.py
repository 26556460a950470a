"""The toolkit's own compose file in every release, beside the stack's files, which stay as
upstream wrote them: what deploy adds to the services. Pure.

Compose reads it because the release's `.env` lists it in COMPOSE_FILE. It gives
- every service that reads settings.env the database's CA bundle, which settings.env tells the
  JDBC driver to verify the server with;
- every long-running service (one with an image, not a one-shot build) a restart policy unless
  the stack sets its own: in 3.19.2 only hapifhir has one, so after a host reboot or an
  out-of-memory kill the others would stay down until the next deploy. `unless-stopped`, so a
  service an operator (or restore-db) stopped stays stopped across a reboot;
- a `health` service: a plain nginx on HEALTH_PORT whose /health asks the stack's nginx for
  /api/health the way the load balancer forwards a user's request (the environment's Host,
  X-Forwarded-Proto: https behind TLS). openlmis/nginx with REQUIRE_SSL=true answers 307 in
  every location without that header (openlmis-nginx v7.1, openlmis.conf), and a load
  balancer's health check cannot send headers: the target group checks HEALTH_PORT instead,
  and the health gate asks the same URL, so the target is healthy exactly when the
  application answers. Users reach only port 80 (from the load balancer), never this one;
- every service built from the release's files (service-configuration, from `config/`) an image
  tag, and every named volume it fills a name, carrying the digest of its build context. In
  3.19.2 the build copies the files into the image, and Docker seeds a named volume from the
  image only while the volume is empty; compose builds an image only when it is missing. So an
  edited `config/` (say log/logback.xml) would never reach the services: with the digest in
  the names, an edit means a new image, built by `up`, and a fresh volume seeded from it, and
  the services that mount the volume are recreated. A rollback finds its own volume again;
- the Java heaps and memory limits of stack.memory (ops.stack.service_memory);
- a service's open-files limit lowered to the host's ceiling where the host cannot give more
  (the lab's hosts; see ops.provider): nothing on AWS;
- the ports of consul and ftp published on the host's loopback only. Upstream publishes them
  on every address (consul's 8500 and its random ports, ftp's 20 and 21: the Reference
  Distribution's docker-compose.yml), yet only the stack reaches them, inside its own network:
  the services find consul by CONSUL_HOST, and the FTP server is "a test FTP server that can be
  used by the fulfillment service" (openlmis-ref-distro v3.19.2, settings-sample.env); from
  the host, deploy itself asks Consul on the loopback (ops.stack.registrations). The security
  groups block those ports; loopback keeps one mistaken rule from exposing them, and an
  operator still reaches them through an SSH tunnel. Compose appends a later file's `ports`
  to the earlier ones' (ports differing in host address are distinct entries), so the list is
  tagged `!override`: Compose 2.24.4 and later (Debian 13's package is 2.26, the plugin
  installed on Amazon Linux 2.29.7: ops.host.docker).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import yaml

from ops.config import ServiceMemory
from ops.stack import compose, service_memory
from ops.stack.compose import COMPOSE_FILES, TOOLKIT_FILE, Service

NAME = TOOLKIT_FILE
CA_FILE = "db-ca.pem"  # in the release's directory
CA_PATH = "/etc/openlmis/db-ca.pem"  # in the services' containers
RESTART = "unless-stopped"
HEALTH_PORT = 8081
HEALTH_CONF = "health.conf"  # in the release's directory
HEALTH_IMAGE = "nginx:1.27-alpine"
INTERNAL = ("consul", "ftp")  # services whose ports only the stack itself uses
LOOPBACK = "127.0.0.1"


class Override(list[str]):
    """A list Compose takes instead of appending it to earlier files' (`!override`)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Override, lambda dumper, value: dumper.represent_sequence(
    "!override", value))

# Docker's embedded DNS resolves the stack's nginx at each request: the health service starts
# and answers (502) even while nginx is down.
_HEALTH_CONF = """server {{
    listen {port};
    resolver 127.0.0.11 valid=10s;
    location = /health {{
        set $app http://{upstream}/api/health;
        proxy_pass $app;
        proxy_set_header Host {domain};
{forwarded}        proxy_connect_timeout 5s;
        proxy_read_timeout 10s;
    }}
    location / {{ return 404; }}
}}
"""


def health_conf(domain: str, https: bool) -> str:
    """The health service's nginx server: /health → the stack's nginx (service `nginx`, port
    80 inside the stack's network, as in every stack here)."""
    forwarded = "        proxy_set_header X-Forwarded-Proto https;\n" if https else ""
    return _HEALTH_CONF.format(port=HEALTH_PORT, upstream="nginx:80", domain=domain,
                               forwarded=forwarded)


def context_digest(files: dict[str, bytes], context: str) -> str:
    """A digest of the release's files under a build context."""
    digest = hashlib.sha256()
    for path in sorted(p for p in files if context == "." or p.startswith(f"{context}/")):
        digest.update(path.encode() + b"\0" + files[path] + b"\0")
    return digest.hexdigest()[:10]


def loopback(port: str) -> str:
    """A published port (short syntax) bound to the loopback: "8500:8500" becomes
    "127.0.0.1:8500:8500", "8300" (a random host port) "127.0.0.1::8300"; a protocol is kept."""
    mapping, slash, protocol = port.partition("/")
    *host, container = mapping.split(":")
    return f"{LOOPBACK}:{host[-1] if host else ''}:{container}{slash}{protocol}"


def render(services: list[Service], memory: Mapping[str, ServiceMemory], *,
           project: str, files: dict[str, bytes], nofile_ceiling: int | None = None) -> str:
    """The file, for the stack's `services` (read from its own files, `files`), on a host
    whose containers may open at most `nofile_ceiling` files (see ops.provider)."""
    volumes: dict[str, dict[str, str]] = {}
    spec: dict[str, dict[str, object]] = {"health": {
        "image": HEALTH_IMAGE, "command": ["nginx", "-g", "daemon off;"],
        "volumes": [f"./{HEALTH_CONF}:/etc/nginx/conf.d/default.conf:ro"],
        "ports": [f"{HEALTH_PORT}:{HEALTH_PORT}"], "mem_limit": "32m", "restart": RESTART}}
    for service in services:
        if service.settings:
            spec.setdefault(service.name, {})["volumes"] = [f"./{CA_FILE}:{CA_PATH}:ro"]
        if service.built:
            digest = context_digest(files, service.context)
            spec.setdefault(service.name, {})["image"] = f"{project}-{service.name}:{digest}"
            volumes |= {v: {"name": f"{project}_{v}-{digest}"} for v in service.volumes}
        elif not service.restart:
            spec.setdefault(service.name, {})["restart"] = RESTART
        if service.name in INTERNAL and service.ports:
            spec.setdefault(service.name, {})["ports"] = Override(
                loopback(p) for p in service.ports)
        if nofile_ceiling and service.nofile[1] > nofile_ceiling:
            spec.setdefault(service.name, {})["ulimits"] = {"nofile": {
                "soft": min(service.nofile[0], nofile_ceiling), "hard": nofile_ceiling}}
    for name, fields in service_memory.spec(services, memory).items():
        spec.setdefault(name, {}).update(fields)
    return ("# Written by inv deploy: the toolkit's additions to the stack's own files.\n"
            + yaml.dump({"services": spec, **({"volumes": volumes} if volumes else {})},
                        Dumper=_Dumper, sort_keys=True))


def merged(texts: dict[str, str], dotenv: dict[str, str], memory: Mapping[str, ServiceMemory],
           *, project: str, files: dict[str, bytes],
           nofile_ceiling: int | None = None) -> tuple[str, list[Service]]:
    """This file for the stack's files (`texts`, decoded from `files`), and the services as
    compose runs them with it."""
    text = render(compose.services(texts, dotenv), memory, project=project, files=files,
                  nofile_ceiling=nofile_ceiling)
    return text, compose.services({**texts, NAME: text}, dotenv)


def compose_file(files: dict[str, bytes]) -> str:
    """COMPOSE_FILE for the release's `.env`: the stack's files present, then this one."""
    return ":".join([*(name for name in COMPOSE_FILES if name in files), NAME])
