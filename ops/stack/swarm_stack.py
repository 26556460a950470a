"""docker-stack.yml: a release's compose model as `docker stack deploy` runs it on a swarm. Pure.

The input is the merged model `docker compose -p <project> config --format json` prints in a
release directory (the stack's files and the toolkit's own, ops.stack.override): paths
absolute, short syntax expanded, settings.env folded into each service's `environment`. So the
stack file carries settings.env's values, secrets among them: it is written as settings.env is
(mode 0600, root only). Compose 2.26.1 (Debian 13's, the lab's hosts) has no
`config --no-env-resolution` (today's Compose reference lists it: "Don't resolve service env
files"), which would keep `env_file` instead; and docker stack's env-file reader (Docker 26.1.5)
keeps settings.env's single quotes inside the values (A='x y' becomes "'x y'").

`docker stack deploy` reads compose file format 3 and ignores, with a warning, what only
Compose runs (build, container_name, depends_on, restart, cgroup_parent, devices, links,
network_mode, security_opt, userns_mode...: the v3 reference's "not supported for docker stack
deploy", https://docs.docker.com/compose/compose-file/compose-file-v3/; `restart` added there
by docker/docs#5680: "use restart_policy instead"). A silently ignored `privileged` or
`network_mode` would run a different stack, so this translation passes through only what the
v3.8 schema holds (docker/cli cli/compose/schema/data/config_schema_v3.8.json) and a swarm runs,
translates Compose's own keys into `deploy` (the v3 reference's `deploy` section:
restart_policy, resources, mode, endpoint_mode, placement, labels) and refuses anything else.

- Built services (service-configuration) are one-shot seeders: deploy builds their image and
  seeds their named volumes on every node itself (`seeds`); the volumes are `external` here.
- `restart` → `deploy.restart_policy.condition`; `mem_limit` → the memory limit AND
  reservation (Swarm schedules by reservations, so memory-heavy services spread over nodes);
  `cpus` → the cpu limit.
- Published ports: long syntax. `mode: host` publishes on the node a task runs on, bypassing
  the routing mesh (Engine API, EndpointPortConfig.PublishMode; Docker docs "Use Swarm mode
  routing mesh": "Bypass the routing mesh"); ingress, the default, on every node. Services that
  publish run `deploy.mode: global`, so every node answers the load balancer either way.
  consul and ftp (override.INTERNAL) publish nothing: Compose binds them to the loopback, which
  a swarm cannot, and only the stack itself (and deploy, by `docker exec`) reaches them.
- routing "host": `endpoint_mode: dnsrr` (DNS round robin: no virtual IP, which needs IPVS, and
  no ingress, which dnsrr cannot use: the compose `deploy` reference, endpoint_mode).
- Every service placed only on nodes labelled ready for the release (deploy sets the label
  once the node holds the release's files, images and seeded volumes), spread over zones.

Checked against Docker 26.1.5 with Compose 2.26.1 (Debian 13, the lab's docker host image):
`docker compose config --format json` made tests/unit/fixtures/compose-config-*.json, and
`docker stack deploy --resolve-image never` on a one-node swarm accepted this file for both
stacks (ref-distro 3.19.2, lab release 1), in both routing modes. There, lab release 1 with
"host" routing served nginx on port 80 and the health service on 8081; with "mesh" the tasks
ran but port 80 did not answer (no IPVS in the lab's hosts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from ops.errors import OpsError
from ops.stack.override import INTERNAL

VERSION = "3.8"  # the newest format docker stack's loader validates
NETWORK = "default"
ZONE_LABEL = "openlmis.zone"
RELEASE_LABEL = "openlmis.release"
RESTART_DELAY = "5s"
# Compose's `restart` as a swarm restart policy's condition.
RESTART = {"no": "none", "on-failure": "on-failure", "always": "any", "unless-stopped": "any"}
# Passed through as they are: in the v3.8 schema, and run by a swarm's tasks.
PASSED = frozenset({
    "cap_add", "cap_drop", "command", "dns", "dns_search", "domainname", "entrypoint",
    "environment", "expose", "extra_hosts", "healthcheck", "hostname", "image", "init",
    "labels", "logging", "read_only", "stdin_open", "stop_grace_period", "stop_signal",
    "sysctls", "tmpfs", "tty", "ulimits", "user", "working_dir"})
# Compose's own, translated below or meaningless on a swarm (ordering, naming, pulling).
COMPOSE_ONLY = frozenset({
    "container_name", "cpus", "depends_on", "mem_limit", "mem_reservation", "networks",
    "ports", "pull_policy", "restart", "volumes", "deploy"})
_MOUNT = {"bind": ("propagation",), "volume": ("nocopy",), "tmpfs": ("size",)}
_HEALTHCHECK = frozenset({"disable", "interval", "retries", "test", "timeout", "start_period"})
_DEPLOY = frozenset({"mode", "replicas", "labels", "rollback_config", "update_config",
                     "resources", "restart_policy", "placement"})

Routing = Literal["mesh", "host"]


@dataclass(frozen=True)
class Seed:
    """A built service: its image, built from `context` on every node, run once there to fill
    its named volumes (volume name, path in the container) before the stack starts."""

    service: str
    image: str
    context: str
    mounts: tuple[tuple[str, str], ...]


def render(config: Mapping[str, Any], *, project: str, routing: Routing, ready_label: str,
           release: str) -> str:
    """The stack file for the compose model `config`: YAML, format 3.8; every service
    labelled with `release` and placed on nodes whose `ready_label` is true."""
    volumes = dict(config.get("volumes") or {})
    built = {v for seed in seeds(config) for v, _ in seed.mounts}
    services = {name: _service(name, spec, routing=routing, ready_label=ready_label,
                               release=release)
                for name, spec in _stack(config).items()}
    networks = {name: _network(name, spec or {}, project)
                for name, spec in (config.get("networks") or {}).items()}
    stack: dict[str, Any] = {"version": VERSION, "services": services, "networks": networks}
    if volumes:
        stack["volumes"] = {key: _volume(spec or {}, external=(spec or {}).get("name") in built)
                            for key, spec in volumes.items()}
    return yaml.safe_dump(stack, sort_keys=False, default_flow_style=False)


def seeds(config: Mapping[str, Any]) -> list[Seed]:
    """What deploy builds and runs once on every node: the services with a `build`, each with
    the named volumes it mounts (as Compose named them)."""
    names = {key: (spec or {}).get("name", key)
             for key, spec in (config.get("volumes") or {}).items()}
    result = []
    for name, spec in sorted((config.get("services") or {}).items()):
        if not spec.get("build") or spec.get("profiles"):
            continue
        build = spec["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        mounts = tuple((names.get(m["source"], m["source"]), m["target"])
                       for m in spec.get("volumes") or ()
                       if m.get("type") == "volume" and m.get("source"))
        image = spec.get("image") or f"{config['name']}-{name}"  # Compose's default name
        result.append(Seed(name, image, str(context), mounts))
    return result


def services(config: Mapping[str, Any]) -> list[str]:
    """The stack's services as Swarm names them: `<project>_<service>`."""
    project = config["name"]
    return [f"{project}_{name}" for name in sorted(_stack(config))]


def _stack(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The services the swarm runs: not the built ones, not those behind a profile (as
    ops.stack.compose.services)."""
    return {name: spec for name, spec in (config.get("services") or {}).items()
            if not spec.get("build") and not spec.get("profiles")}


def _service(name: str, spec: Mapping[str, Any], *, routing: Routing, ready_label: str,
             release: str) -> dict[str, Any]:
    for key in spec:
        if key not in PASSED and key not in COMPOSE_ONLY and not key.startswith("x-"):
            raise OpsError(
                f"service {name} sets {key}, which a Docker Swarm cannot run",
                hint=f"remove {key} from {name} in the stack's compose files, or run this "
                "environment on one host (host.count: 1)")
    result = {key: value for key, value in spec.items() if key in PASSED and value is not None}
    if unknown := sorted(set(spec.get("healthcheck") or {}) - _HEALTHCHECK):
        raise OpsError(f"service {name} sets healthcheck.{unknown[0]}, which the stack file "
                       "format (3.8) does not hold",
                       hint=f"remove it from {name} in the stack's compose files")
    if mounts := [_mount(name, m) for m in spec.get("volumes") or ()]:
        result["volumes"] = mounts
    networks = dict(spec.get("networks") or {NETWORK: None})
    if set(networks) != {NETWORK} or networks[NETWORK]:
        result["networks"] = networks
    ports = [] if name in INTERNAL else [
        _port(name, p, routing) for p in spec.get("ports") or () if p.get("published")]
    if ports:
        result["ports"] = ports
    result["deploy"] = _deploy(name, spec, published=bool(ports), routing=routing,
                               ready_label=ready_label, release=release)
    return result


def _deploy(name: str, spec: Mapping[str, Any], *, published: bool, routing: Routing,
            ready_label: str, release: str) -> dict[str, Any]:
    deploy = dict(spec.get("deploy") or {})
    if unknown := sorted(set(deploy) - _DEPLOY):
        raise OpsError(f"service {name} sets deploy.{unknown[0]}, which the stack file "
                       "format (3.8) does not hold",
                       hint=f"remove it from {name} in the stack's compose files")
    if published:
        deploy["mode"] = "global"
        deploy.pop("replicas", None)
    if routing == "host":
        deploy["endpoint_mode"] = "dnsrr"
    deploy["labels"] = {**_mapping(deploy.get("labels")), RELEASE_LABEL: release}
    if restart := spec.get("restart"):
        condition = RESTART.get(str(restart))
        if condition is None and not str(restart).startswith("on-failure:"):
            raise OpsError(f"service {name} has restart: {restart}, which Compose does not know")
        policy: dict[str, Any] = {"condition": condition or "on-failure", "delay": RESTART_DELAY}
        if condition is None:  # on-failure:N
            policy["max_attempts"] = int(str(restart).partition(":")[2])
        deploy["restart_policy"] = policy
    resources = {key: {k: str(v) if k in ("cpus", "memory") else v for k, v in value.items()}
                 for key, value in (deploy.get("resources") or {}).items()}
    if memory := spec.get("mem_limit"):
        resources.setdefault("limits", {})["memory"] = str(memory)
        resources.setdefault("reservations", {})["memory"] = str(
            spec.get("mem_reservation") or memory)
    elif reservation := spec.get("mem_reservation"):
        resources.setdefault("reservations", {})["memory"] = str(reservation)
    if cpus := spec.get("cpus"):
        resources.setdefault("limits", {})["cpus"] = str(cpus)
    if resources:
        deploy["resources"] = resources
    deploy["placement"] = {
        "constraints": [f"node.labels.{ready_label} == true"],
        "preferences": [{"spread": f"node.labels.{ZONE_LABEL}"}]}
    return deploy


def _port(name: str, port: Mapping[str, Any], routing: Routing) -> dict[str, Any]:
    """A published port in long syntax; host mode for "host" routing, ingress for "mesh"."""
    published = str(port["published"])
    if port.get("host_ip"):
        raise OpsError(f"service {name} publishes {port['host_ip']}:{published}:"
                       f"{port['target']}, which a swarm cannot: it publishes on every address",
                       hint=f"publish {name}'s port without an address in the stack's files")
    if not published.isdigit():
        raise OpsError(f"service {name} publishes the port range {published}, which the "
                       "stack file format (3.8) cannot hold",
                       hint=f"publish {name}'s ports one by one in the stack's files")
    result: dict[str, Any] = {"target": int(port["target"]), "published": int(published),
                              "protocol": port.get("protocol") or "tcp"}
    if routing == "host":
        result["mode"] = "host"
    return result


def _mount(name: str, mount: Mapping[str, Any]) -> dict[str, Any]:
    """A mount in long syntax, with only what the v3.8 schema holds: a bind keeps its absolute
    source (the release directory, the same path on every node)."""
    kind = mount.get("type")
    if kind not in _MOUNT:
        raise OpsError(f"service {name} mounts a {kind} volume, which a swarm cannot",
                       hint="use a named volume or a bind mount in the stack's files")
    result = {key: mount[key] for key in ("type", "source", "target", "read_only",
                                          "consistency") if mount.get(key) is not None}
    options = {key: value for key, value in (mount.get(kind) or {}).items()
               if key in _MOUNT[kind]}
    if options:
        result[kind] = options
    return result


def _network(name: str, spec: Mapping[str, Any], project: str) -> dict[str, Any]:
    """A network as an overlay the one-off containers of deploy can join; the default name
    (`<project>_<network>`) left to docker stack, which gives the same."""
    if spec.get("external"):
        return {"external": True, "name": spec.get("name", name)}
    result = {key: value for key, value in spec.items()
              if key in ("driver_opts", "labels", "internal") and value}
    if spec.get("name") and spec["name"] != f"{project}_{name}":
        result["name"] = spec["name"]
    if (ipam := spec.get("ipam")) and ipam.get("config"):
        result["ipam"] = ipam
    return {**result, "driver": "overlay", "attachable": True}


def _volume(spec: Mapping[str, Any], *, external: bool) -> dict[str, Any]:
    """A named volume as Compose named it; external when a seed fills it (it exists on every
    node before the stack starts)."""
    if external or spec.get("external"):
        return {"external": True, "name": spec["name"]}
    return {key: value for key, value in spec.items()
            if key in ("name", "driver", "driver_opts", "labels") and value}


def _mapping(value: Mapping[str, Any] | list[str] | None) -> dict[str, str]:
    """A labels field given as a mapping or as KEY=value lines, as a mapping."""
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    return dict(str(line).partition("=")[::2] for line in value or ())
