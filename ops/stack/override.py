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
  the services that mount the volume are recreated. A rollback finds its own volume again.
"""


from __future__ import annotations

import hashlib

import yaml

from ops.stack.compose import COMPOSE_FILES, TOOLKIT_FILE, Service

NAME = TOOLKIT_FILE
CA_FILE = "db-ca.pem"  # in the release's directory
CA_PATH = "/etc/openlmis/db-ca.pem"  # in the services' containers
RESTART = "unless-stopped"
HEALTH_PORT = 8081
HEALTH_CONF = "health.conf"  # in the release's directory
HEALTH_IMAGE = "nginx:1.27-alpine"

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


def render(services: list[Service], *, project: str, files: dict[str, bytes]) -> str:
    """The file, for the stack's `services` (read from its own files, `files`)."""
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
    return ("# Written by inv deploy: the toolkit's additions to the stack's own files.\n"
            + yaml.safe_dump({"services": spec, **({"volumes": volumes} if volumes else {})},
                             sort_keys=True))


def compose_file(files: dict[str, bytes]) -> str:
    """COMPOSE_FILE for the release's `.env`: the stack's files present, then this one."""
    return ":".join([*(name for name in COMPOSE_FILES if name in files), NAME])
