"""The host's desired state (Docker, Compose, daemon.json, log rotation, swap, PostgreSQL client)
as a plan.

`plan` is pure: from the environment and the host's facts, the changes needed, each carrying
the steps that carry it out (its `HostSteps` payload). An up-to-date host gives an empty list.
"""

from __future__ import annotations

from dataclasses import dataclass

from ops.config import Environment
from ops.host import docker, logrotate, system
from ops.host.facts import Facts
from ops.host.remote import Step
from ops.plan import Action, Change


@dataclass(frozen=True)
class HostSteps:
    """What carries out a host change: commands to run and files to put, in order."""

    steps: tuple[Step, ...]


def candidates(env: Environment) -> list[str]:
    """Package names the facts command asks about."""
    major = env.database.engine_version
    return [*docker.candidates(), "logrotate", system.postgres_client("debian-13", major),
            system.postgres_client("amzn-2023", major)]


def postgres_client(env: Environment, os: str) -> str:
    """The PostgreSQL client package the host gets (deploy's database steps use it)."""
    return system.postgres_client(os, env.database.engine_version)


def plan(env: Environment, facts: Facts) -> list[Change[HostSteps]]:
    os = facts.os
    docker.check_supported(os)
    changes: list[Change[HostSteps]] = []
    swarm = env.host.swarm
    if facts.daemon_json_sha256 != system.daemon_json_sha256(swarm=swarm):
        steps: list[Step] = [("run", "install -d -m 0755 /etc/docker"),
                             ("put", system.DAEMON_JSON_PATH, system.daemon_json(swarm=swarm),
                              0o644)]
        if facts.docker_active:
            steps.append(("run", "systemctl restart docker"))  # live-restore keeps containers
        changes.append(Change(Action.UPDATE, system.DAEMON_JSON_PATH,
                              "json-file logs capped at 5 x 20 MB, " + (
                                  "no live-restore (a swarm refuses it)" if swarm
                                  else "live-restore"), payload=HostSteps(tuple(steps))))
    wanted = [*docker.packages(os, env.host.docker_source), postgres_client(env, os)]
    missing = [p for p in wanted if p not in facts.packages]
    if missing:
        changes.append(Change(Action.CREATE, "packages", " ".join(missing),
                              payload=_run(_install(env, os, missing))))
    if not facts.compose_version and os == "amzn-2023":
        changes.append(Change(Action.CREATE, "docker compose plugin", docker.COMPOSE_RELEASE,
                              payload=_run(docker.compose_plugin_commands(os))))
    if not (facts.docker_enabled and facts.docker_active):
        changes.append(Change(Action.UPDATE, "docker service", "enable and start",
                              payload=_run(["systemctl enable --now docker"])))
    if (facts.logrotate_sha256 != logrotate.wanted_sha256(env.project)
            or facts.logrotate_timer != "enabled/active" or "logrotate" not in facts.packages):
        install = [] if "logrotate" in facts.packages else \
            system.install_commands(os, ["logrotate"], [])
        changes.append(Change(Action.UPDATE, logrotate.CONF_PATH, logrotate.DETAIL,
                              payload=HostSteps(tuple(logrotate.steps(env.project, install)))))
    if env.host.swap_gb and facts.swap_bytes == 0:
        changes.append(Change(Action.CREATE, system.SWAP_FILE, f"{env.host.swap_gb} GiB swap",
                              payload=_run(system.swap_commands(env.host.swap_gb))))
    return changes


def _run(commands: list[str]) -> HostSteps:
    return HostSteps(tuple(("run", c) for c in commands))


def _install(env: Environment, os: str, missing: list[str]) -> list[str]:
    return system.install_commands(os, missing, [
        *docker.repository_commands(os, env.host.docker_source),
        *system.postgres_repository_commands(os, env.database.engine_version)])
