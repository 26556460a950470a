"""openlmis/nginx's stand-in: nginx, with its config rendered from Consul as the image's
consul-template does with openlmis.conf (consul-template itself is not packaged in Debian).

`render` is that template in Python, section by section; `main` is the image's run.sh: the
VIRTUAL_HOST check, the defaults, then a loop that re-renders and reloads nginx on change.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

PARAM = r"{[\w-]+}"
ALL = r"<[\w-]+>"
GLOBAL_ALL = r"^<[\w-]+>$"
OUTPUT = "/etc/nginx/conf.d/default.conf"
DEFAULTS = {
    "CONSUL_HOST": "consul", "CONSUL_PORT": "8500", "SERVICE_TAG": "openlmis-service",
    "RESOURCES_PATH": "resources", "NGINX_LOG_DIR": "/var/log/nginx",
    "CONSUL_TEMPLATE_LOG_DIR": "/var/log/consul-template", "CLIENT_MAX_BODY_SIZE": "1m",
}
TIMEOUTS = ("PROXY_CONNECT_TIMEOUT", "PROXY_SEND_TIMEOUT", "PROXY_READ_TIMEOUT", "SEND_TIMEOUT")


@dataclass(frozen=True)
class Discovered:
    """What the template reads from Consul."""

    services: dict[str, list[str]]  # catalog: name → tags
    instances: dict[str, list[tuple[str, int]]]  # name → (address, port), any health
    resources: list[tuple[str, str]]  # KV tree under RESOURCES_PATH: (path, upstream), sorted


def render(found: Discovered, env: dict[str, str]) -> str:
    """The nginx config openlmis.conf makes of `found` with the environment `env`."""
    lines = [
        "map $http_host $allowlisted_ip {", "    default 1;",
        f'    "{env.get("VIRTUAL_HOST", "")}" 0;', "}",
        "map $allowlisted_ip $limit_key {", '    0 "";', "    1 $binary_remote_addr;", "}",
        f"limit_req_zone $limit_key zone=mylimit:{env.get('LIMIT_ZONE_SIZE') or '32m'} "
        f"rate={env.get('LIMIT_RATE') or '20r/s'};",
    ]
    for name, tags in sorted(found.services.items()):
        servers = found.instances.get(name) or []
        if env.get("SERVICE_TAG", "") in tags and servers:
            lines += [f"upstream {name} {{", "  least_conn;", "  keepalive 128;",
                      *(f"  server {a}:{p};" for a, p in servers), "}"]
    lines += [
        "log_format upstream_time '$remote_addr - $remote_user [$time_local] '",
        "  '\"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" '",
        "  '$request_time $upstream_connect_time $upstream_header_time "
        "$upstream_response_time $pipe $bytes_sent $request_length';",
        "server {", "  listen 80;", "  gzip off;",
        f"  access_log {env.get('NGINX_LOG_DIR', '')}/access.log upstream_time buffer=64k "
        "flush=30s;",
        f"  error_log {env.get('NGINX_LOG_DIR', '')}/error.log;",
        f"  server_name {env.get('VIRTUAL_HOST', '')};",
        f"  client_max_body_size {env.get('CLIENT_MAX_BODY_SIZE', '')};",
        f"  proxy_connect_timeout {env.get('PROXY_CONNECT_TIMEOUT', '')};",
        f"  proxy_send_timeout {env.get('PROXY_SEND_TIMEOUT', '')};",
        f"  proxy_read_timeout {env.get('PROXY_READ_TIMEOUT', '')};",
        '  proxy_set_header Connection "";', "  proxy_http_version 1.1;",
        f"  send_timeout {env.get('SEND_TIMEOUT', '')};",
        "  limit_req zone=mylimit burst=10 nodelay;", "  limit_req_log_level warn;",
        "  limit_req_status 429;",
    ]
    ssl = env.get("REQUIRE_SSL") == "true"
    plain = [(p, u) for p, u in found.resources
             if not (re.search(PARAM, p) or re.search(ALL, p))]
    params = [(re.sub(PARAM, r"[\\w-]+", p), u) for p, u in found.resources
              if re.search(PARAM, p)]
    alls = [(re.sub(ALL, ".+", p), u) for p, u in found.resources
            if re.search(ALL, p) and not re.search(GLOBAL_ALL, p)]
    for path, upstream in plain + params + alls:
        lines += _location(f"/{path}/?$", upstream, ssl)
    for _, upstream in [(p, u) for p, u in found.resources if re.search(GLOBAL_ALL, p)]:
        lines += _location("/", upstream, ssl) + _location("/.+$", upstream, ssl)
    return "\n".join([*lines, "}", ""])


def _location(pattern: str, upstream: str, ssl: bool) -> list[str]:
    redirect = ['    if ($http_x_forwarded_proto != "https") {',
                "      return 307 https://$host$request_uri;", "    }"] if ssl else []
    return [f"  location ~ {pattern} {{", *redirect, f"    proxy_pass http://{upstream};",
            "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;", "  }"]


def discover(consul: str, prefix: str) -> Discovered:
    """Read the catalog, each service's instances and the KV tree from Consul."""
    services = _get(consul, "/v1/catalog/services") or {}
    instances = {name: [(e["Service"]["Address"] or e["Node"]["Address"], e["Service"]["Port"])
                        for e in _get(consul, f"/v1/health/service/{name}") or []]
                 for name in services}
    pairs = _get(consul, f"/v1/kv/{prefix}?recurse") or []
    resources = [(p["Key"][len(prefix):].lstrip("/"),
                  base64.b64decode(p["Value"] or "").decode())
                 for p in pairs if not p["Key"].endswith("/")]
    return Discovered(services, instances, sorted(resources))


def _get(consul: str, path: str) -> object:
    try:
        with urllib.request.urlopen(f"http://{consul}{path}", timeout=5) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def main() -> None:
    """run.sh: refuse without VIRTUAL_HOST, then nginx, re-rendered whenever Consul changes."""
    if not os.environ.get("VIRTUAL_HOST"):
        print("Error: VIRTUAL_HOST environment variable is not set.", file=sys.stderr)
        sys.exit(1)
    env = {**DEFAULTS, **{k: v for k, v in os.environ.items() if v}}
    for key in TIMEOUTS:
        env.setdefault(key, os.environ.get("NGINX_TIMEOUT") or "60s")
    os.environ.update(env)
    os.makedirs(env["NGINX_LOG_DIR"], exist_ok=True)
    os.makedirs(env["CONSUL_TEMPLATE_LOG_DIR"], exist_ok=True)
    if os.path.exists(OUTPUT):
        os.remove(OUTPUT)
    log = open(f"{env['CONSUL_TEMPLATE_LOG_DIR']}/ctmpl.log", "a", buffering=1)  # noqa: SIM115
    nginx = subprocess.Popen(["nginx", "-g", "daemon off;"])
    consul = f"{env['CONSUL_HOST']}:{env['CONSUL_PORT']}"
    rendered = None
    while nginx.poll() is None:
        try:
            text = render(discover(consul, env["RESOURCES_PATH"]), env)
        except (OSError, ValueError, KeyError) as exc:
            log.write(f"{time.strftime('%FT%TZ')} [ERR] (view) {consul}: {exc}\n")
            time.sleep(2)
            continue
        if text != rendered:
            with open(OUTPUT, "w") as handle:
                handle.write(text)
            rendered = text
            log.write(f"{time.strftime('%FT%TZ')} [INFO] (runner) rendered {OUTPUT}\n")
            reload = subprocess.run(["nginx", "-s", "reload"], capture_output=True, text=True)
            if reload.returncode != 0:
                log.write(reload.stderr)
        time.sleep(1)
    sys.exit(nginx.returncode)
