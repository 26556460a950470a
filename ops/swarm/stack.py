"""A release on the swarm: what each node needs before the stack may run there, the stack's
deployment from node 1, and its health.

Docker Swarm has no registry here and no shared disk, so every node holds what a task placed
on it needs: the release's directory (its bind-mounted files: settings.env, health.conf, the
database's CA bundle, at the same path on each node), the images (pushed or pulled on each),
and the named volumes a one-shot build seeds (service-configuration's config volume, seeded on
each node by running the built image once; see ops.stack.swarm_stack.seeds). A node with all
of it is labelled ready for the release (`ready_label`), and the stack's services are placed
only on ready nodes: a node that joins later (a replaced instance) gets no task until deploy
made it ready, instead of tasks that start without their configuration.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import yaml

from ops import console
from ops.host.remote import SLOW, UNLIMITED, Remote, sh
from ops.stack import swarm_stack
from ops.stack.compose import Service
from ops.stack.health import HEALTH_PATH, Assessment
from ops.stack.release import CURRENT, RELEASES
from ops.swarm import formation

STACK_FILE = "docker-stack.yml"  # in the release's directory on node 1 (0600: it holds settings)


@dataclass(frozen=True)
class Ready:
    """Seed the release's built volumes on a node and label it ready for the release."""

    node: int
    release_id: str


def ready_label(release_id: str) -> str:
    """The node label that says a node holds everything the release's tasks need."""
    return "openlmis.release-" + re.sub(r"[^a-z0-9-]", "-", release_id.lower())


def unlabel_command(labels: list[str]) -> str:
    """Remove the ready labels of pruned releases from every node, one by one (Docker refuses
    to remove a label a node lacks)."""
    return (f"for n in $(docker node ls -q); do for l in {' '.join(sh(x) for x in labels)}; "
            "do docker node update --label-rm \"$l\" \"$n\" >/dev/null 2>&1; done; done; true")


def config_command(project: str, release_id: str) -> str:
    """The release's compose model as Compose resolves it (files merged, .env interpolated,
    env files read): what the stack file is made from."""
    return f"cd {sh(f'{RELEASES}/{release_id}')} && " + sh(
        "docker", "compose", "--ansi", "never", "-p", project, "config", "--format", "json")


def model(remote: Remote, project: str, release_id: str) -> dict[str, object]:
    """The release's compose model, read on a node holding its directory."""
    out = remote.run(config_command(project, release_id), what="docker compose config")
    return dict(yaml.safe_load(out))


def prepare(remote: Remote, leader: Remote, release_id: str, config: dict[str, object]) -> None:
    """Make a node ready for a release whose directory and images it holds: build each
    one-shot's image and seed its volumes where missing, then the label."""
    for seed in swarm_stack.seeds(config):
        remote.run(f"docker image inspect {sh(seed.image)} >/dev/null 2>&1 || docker build -q "
                   f"-t {sh(seed.image)} {sh(seed.context)}",
                   what=f"building {seed.service}", timeout=SLOW)
        for volume, target in seed.mounts:
            remote.run(f"docker volume inspect {sh(volume)} >/dev/null 2>&1 || docker run --rm "
                       f"-v {sh(f'{volume}:{target}')} {sh(seed.image)}",
                       what=f"seeding volume {volume}", timeout=SLOW)
    leader.run(sh("docker", "node", "update", "--label-add", f"{ready_label(release_id)}=true",
                  formation.node_id(remote)), what="labelling a node ready")


def deploy_command(project: str, release_id: str) -> str:
    """`docker stack deploy` of a release's stack file (`release_id` may be `current`)."""
    directory = CURRENT if release_id == "current" else f"{RELEASES}/{release_id}"
    return f"cd {sh(directory)} && " + sh(
        "docker", "stack", "deploy", "--resolve-image", "never", "--prune", "--detach=true",
        "-c", STACK_FILE, project)


def up(leader: Remote, project: str, routing: Literal["mesh", "host"], release_id: str,
       config: dict[str, object]) -> None:
    """Deploy the release as the stack from node 1. A compose project of the same name (the
    single host this swarm grew from) is stopped first, its volumes kept: the stack's
    services take its ports and the same named volumes."""
    text = swarm_stack.render(config, project=project, routing=routing,
                              ready_label=ready_label(release_id), release=release_id)
    leader.put(f"{RELEASES}/{release_id}/{STACK_FILE}", text.encode(), 0o600)
    leader.run(f"[ -z \"$(docker ps -aq --filter label=com.docker.compose.project={sh(project)})"
               f"\" ] || docker compose --ansi never -p {sh(project)} down",
               what="stopping the single-host compose project", timeout=UNLIMITED)
    leader.run(deploy_command(project, release_id), what="docker stack deploy", timeout=SLOW)


def leave_command(project: str) -> str:
    """Back to one host: remove the stack, wait for its network to go, leave the swarm."""
    return (f"docker stack rm {sh(project)} && for i in $(seq 60); do "
            f"docker network inspect {sh(f'{project}_default')} >/dev/null 2>&1 || break; "
            "sleep 1; done; docker swarm leave --force")


def health_command(project: str, port: int) -> str:
    """The stack's services with their running/desired tasks, then /api/health through the
    health service on node 1 (global: one on every node), as the load balancer asks it."""
    return (
        f"docker stack services {sh(project)} --format '{{{{.Name}}}}\t{{{{.Replicas}}}}'; "
        "printf 'http\\t%s\\n' \"$(curl -s -o /dev/null -m 12 -w '%{http_code}' "
        f"http://127.0.0.1:{port}/health)\"")


def assess(output: str, services: list[Service], project: str) -> Assessment:
    """Healthy when every service runs all its tasks and /api/health answers 200; else what it
    waits for. One-shot builds are not in the stack. Swarm replaces a task whose healthcheck
    fails, so no state is final: the gate waits for its timeout. Pure."""
    found: dict[str, str] = {}
    http = ""
    for line in output.splitlines():
        name, _, replicas = line.partition("\t")
        if name == "http":
            http = replicas
        elif replicas:
            found[name.removeprefix(f"{project}_")] = replicas.split()[0]
    waiting = {}
    for service in services:
        if service.built:
            continue
        if service.name not in found:
            waiting[service.name] = "missing"
            continue
        running, _, desired = found[service.name].partition("/")
        if running != desired or desired in ("", "0"):
            waiting[service.name] = f"{running}/{desired} tasks running"
    if http != "200":
        waiting[HEALTH_PATH] = f"HTTP {http or 'no answer'}"
    return Assessment(not waiting, waiting)


def tasks_command(project: str) -> str:
    return sh("docker", "stack", "ps", project, "--filter", "desired-state=running",
              "--format", "{{.Name}}\t{{.Node}}\t{{.CurrentState}}\t{{.Error}}")


def tasks(output: str, project: str) -> list[dict[str, str]]:
    """The stack's running tasks (`tasks_command`): service, node, state, status. Pure."""
    rows = []
    for line in output.splitlines():
        name, node, state, error = [*line.split("\t"), "", "", ""][:4]
        service = name.removeprefix(f"{project}_").split(".")[0]
        rows.append({"service": service, "node": node, "state": state.split()[0].lower()
                     if state else "", "status": error or state})
    return sorted(rows, key=lambda row: (row["service"], row["node"]))


@contextmanager
def stopped(remote: Remote, project: str) -> Iterator[None]:
    """The stack's replicated services scaled to none around a database cut-over (the global
    ones, nginx and the health service, use no database and keep answering), and the live
    release deployed again however it ends: each service gets its replicas back."""
    names = remote.run(f"docker service ls --filter label=com.docker.stack.namespace="
                       f"{sh(project)} --filter mode=replicated --format '{{{{.Name}}}}'",
                       what="listing the stack's services").split()
    if not names:
        yield
        return
    try:
        remote.run(sh("docker", "service", "scale", "--detach", *(f"{n}=0" for n in names)),
                   what="stopping the stack's services")
        listing = (f"docker service ls --filter label=com.docker.stack.namespace={sh(project)} "
                   "--filter mode=replicated --format '{{.Replicas}}'")
        console.wait_for("the stack's services to stop", lambda: all(
            replicas.startswith("0/") for replicas in remote.run(
                listing, what="listing the stack's services").split()), timeout=300, interval=2)
        yield
    finally:
        remote.run(deploy_command(project, "current"), what="docker stack deploy", check=False,
                   timeout=SLOW)
