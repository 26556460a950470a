"""One command in a running service container of the live release: `docker compose exec`,
or on a swarm `docker exec` in one of the service's tasks, on the node it runs on.

The commands and the parsing are pure; `run` checks the service over the toolkit's own
connection, then runs the command on the operator's terminal (ops.host.terminal).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ops import targets
from ops.config import Environment
from ops.errors import OpsError
from ops.host import terminal
from ops.host.remote import as_root, sh
from ops.host.session import open_host
from ops.stack.release import CURRENT


@dataclass(frozen=True)
class Services:
    """The live release and its services, and which of them run (on a swarm: on which node,
    by its `openlmis.node` index)."""

    release: str
    services: tuple[str, ...]
    running: tuple[str, ...]
    nodes: tuple[tuple[str, str], ...] = ()  # (service, node index) of each running task


def _compose(project: str) -> str:
    return sh("docker", "compose", "--ansi", "never", "-p", project)


def services_command(project: str, *, swarm: bool = False) -> str:
    """Print the live release (nothing when none), its services and its running ones (on a
    swarm each running task's service and node index)."""
    compose = _compose(project)
    running = (
        f"docker stack ps {sh(project)} --filter desired-state=running --format "
        "'{{.Name}} {{.Node}}' | while read -r task host; do printf 'running\\t%s\\t%s\\n' "
        f"\"$(echo \"${{task%%.*}}\" | sed 's/^{project}_//')\" \"$(docker node inspect "
        "\"$host\" --format '{{index .Spec.Labels \"openlmis.node\"}}')\"; done"
    ) if swarm else f"{compose} ps --services --status running | sed 's/^/running\\t/'"
    return "\n".join([
        f"cd {CURRENT} 2>/dev/null || exit 0",
        "printf 'release\\t%s\\n' \"$(basename \"$(pwd -P)\")\"",
        f"{compose} config --services | sed 's/^/service\\t/'",
        running,
    ])


def parse(output: str) -> Services:
    """The services command's output, read."""
    found: dict[str, list[str]] = {}
    for line in output.splitlines():
        kind, _, value = line.partition("\t")
        if value:
            found.setdefault(kind, []).append(value)
    tasks = [tuple(value.split("\t", 1)) for value in found.get("running", [])]
    return Services((found.get("release") or [""])[0], tuple(found.get("service", [])),
                    tuple(dict.fromkeys(task[0] for task in tasks)),
                    tuple((task[0], task[1]) for task in tasks if len(task) == 2))


def known(release: str, services: Iterable[str], service: str, address: str,
          env_name: str) -> None:
    """Refuse a service the live release lacks (or no release at all), naming what there is."""
    if not release:
        raise OpsError(f"nothing is deployed on {address}",
                       hint=f"run: inv deploy --env {env_name}")
    if service not in services:
        raise OpsError(f"release {release} has no service {service!r}",
                       hint=f"its services: {', '.join(sorted(services))}")


def check(found: Services, service: str, address: str, env_name: str) -> None:
    """Refuse a service the live release lacks, or one not running, naming what there is."""
    known(found.release, found.services, service, address, env_name)
    if service not in found.running:
        raise OpsError(f"service {service} of release {found.release} is not running",
                       hint=f"running: {', '.join(sorted(found.running)) or 'none'}; see: "
                       f"inv status --env {env_name}, inv logs --env {env_name} {service}")


def exec_command(project: str, service: str, command: list[str], *, tty: bool,
                 login: str, swarm: bool = False) -> str:
    """The shell command running `command` in the service's container, as root on the host
    (Docker's socket is root's): `-T` without a terminal, so piped input still reaches it. On a
    swarm, in the service's task on the node the command runs on."""
    if swarm:
        task = ("$(docker ps -q --filter "
                + sh(f"label=com.docker.swarm.service.name={project}_{service}") + " | head -1)")
        return as_root("docker exec " + sh(*(["-it"] if tty else ["-i"])) + f" {task} "
                       + sh(*command), login)
    line = f"cd {CURRENT} && " + _compose(project) + " exec " + sh(
        *([] if tty else ["-T"]), "--", service, *command)
    return as_root(line, login)


def run(env: Environment, service: str, command: list[str]) -> int:
    """Run `command` in the service's running container; its exit status."""
    if not command:
        raise OpsError("no command to run", hint=f"inv exec --env {env.name} {service} -- CMD...")
    swarm = env.host.swarm
    with open_host(env) as remote:
        found = parse(remote.run(services_command(env.project, swarm=swarm),
                                 what="listing the services"))
    check(found, service, remote.address, env.name)
    host = targets.host(env)
    if swarm:
        on = min(node for name, node in found.nodes if name == service)  # node 1's if it runs there
        host = next((h for h in targets.hosts(env) if str(h.node) == on), host)
    tty = terminal.interactive()
    return terminal.attached(terminal.argv(
        host, exec_command(env.project, service, command, tty=tty, login=host.user,
                           swarm=swarm), tty=tty))
