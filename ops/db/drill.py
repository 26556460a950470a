"""verify-backup's scratch server for dumps: a throw-away PostgreSQL container on the host.

Why there, and not a scratch database on the instance or an instance restored from a snapshot:
the drill then uses none of the production instance's storage, memory or connections, costs
nothing on AWS, and takes minutes instead of the ten or more of a snapshot restore. What it
uses is the host's memory and disk, hence a memory limit (and a low CPU weight) that leave the
running stack its share, and a check of free space before anything is changed.

The container (`openlmis-drill`, labelled) runs the server's major version with PostGIS, its
data on an anonymous volume, published on the host's loopback only; its password is random,
reaches Docker in a 0600 file of the session's private directory and libpq in a pgpass file,
never a command line. It is removed however the drill ends, and a leftover of a killed drill
by the next one. Planning (space, memory, the commands) is pure; `prepare` and `server` run it.
"""

from __future__ import annotations

import secrets
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ops import console
from ops.db.manifest import Manifest, human
from ops.db.remote import DbHost
from ops.errors import OpsError
from ops.host.remote import sh

NAME = "openlmis-drill"
LABEL = "org.openlmis.ops.drill"
# LABEL's value: whose drill a container is. The host's scheduled drill (ops.host.schedule) runs
# as SCHEDULED_UNIT; neither kind starts while the other runs.
OPERATOR, SCHEDULED = "verify-backup", "scheduled"
SCHEDULED_UNIT = "openlmis-backup-drill"
VOLUME = "/drill"  # the container's anonymous volume, PGDATA inside it
USER = "postgres"
DATABASE = "drill"
# Room beyond the dump and the database: WAL (max_wal_size below), new catalogs, the image.
MARGIN = 1 << 30
GROWTH = 10  # percent a restored database may exceed the size measured at the dump
MIN_MEMORY = 256 << 20
# A throw-away server: speed over durability, WAL kept small.
SETTINGS = ("fsync=off", "full_page_writes=off", "synchronous_commit=off",
            "max_wal_size=512MB")
READY_SECONDS = 180
CPU_SHARES = 256  # a quarter of a default container's weight: the stack wins when CPUs are busy

# Remove every drill container (and its anonymous volumes), a killed drill's too.
REMOVE = (f"docker ps -aq --filter label={LABEL} | xargs -r docker rm -fv >/dev/null")


def facts_command(work: str) -> str:
    """What `prepare` needs, in one command run as root after removing leftovers: whether Docker
    is there, the available memory, and device and free bytes of the session's directory (the
    dump goes there) and of Docker's root (the volume goes there)."""
    return (f"if systemctl is-active --quiet {SCHEDULED_UNIT}.service; then echo busy=1; "
            "exit 0; fi; "
            f"command -v docker >/dev/null || {{ echo docker=; exit 0; }}; {REMOVE} && "
            "root=$(docker info --format '{{.DockerRootDir}}') && echo docker=$root && "
            "echo memory=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo) && "
            f"for p in {shlex.quote(work)} \"$root\"; do "
            'echo "place=$p $(stat -c %d "$p") $(df -B1 --output=avail "$p" | tail -1)"; done')


@dataclass(frozen=True)
class Place:
    path: str
    device: str
    free: int


@dataclass(frozen=True)
class Facts:
    busy: bool  # the host's scheduled drill is running
    docker: bool
    memory: int  # bytes available
    places: tuple[Place, ...]  # the session's directory, then Docker's root


def parse_facts(output: str) -> Facts:
    """facts_command's output, read."""
    busy, docker, memory, places = False, False, 0, []
    for line in output.splitlines():
        key, _, value = line.partition("=")
        if key == "busy":
            busy = True
        elif key == "docker":
            docker = bool(value.strip())
        elif key == "memory":
            memory = int(value) << 10
        elif key == "place":
            path, device, free = value.rsplit(" ", 2)
            places.append(Place(path, device, int(free)))
    return Facts(busy, docker, memory, tuple(places))


def needs(manifest: Manifest) -> tuple[int, int]:
    """Bytes the drill needs where the dump is fetched, and where the scratch data lives."""
    return manifest.archive_size, manifest.database_size * (100 + GROWTH) // 100 + MARGIN


def space_problems(facts: Facts, manifest: Manifest) -> list[str]:
    """Each filesystem too small for what the drill puts on it (the dump and the scratch
    data add up when they share one), one line each."""
    wanted: dict[str, int] = {}
    for place, size in zip(facts.places, needs(manifest), strict=True):
        wanted[place.device] = wanted.get(place.device, 0) + size
    problems = []
    for device, size in wanted.items():
        paths = list(dict.fromkeys(p.path for p in facts.places if p.device == device))
        free = next(p.free for p in facts.places if p.device == device)
        where = (f"{paths[0]} has" if len(paths) == 1 else
                 f"{' and '.join(paths)} (one filesystem) have")
        if free < size:
            problems.append(f"{where} {human(free)} free, the drill needs {human(size)} there")
    return problems


def memory_limit(available: int, configured_mb: int | None) -> int:
    """The container's memory limit: backups.drill_memory_mb, else half of what the host has
    available now (the other half stays the running stack's)."""
    return configured_mb << 20 if configured_mb else available // 2


def run_command(image: str, memory: int, env_file: str) -> str:
    """`docker run` of the scratch server: limited, loopback only, password from `env_file`."""
    settings = [word for setting in SETTINGS for word in ("-c", setting)]
    return sh("docker", "run", "-d", "--name", NAME, "--label", f"{LABEL}={OPERATOR}",
              "--memory", str(memory), "--memory-swap", str(memory),
              "--shm-size", str(min(memory // 4, 256 << 20)), "--cpu-shares", str(CPU_SHARES),
              "--publish", "127.0.0.1::5432", "--env-file", env_file,
              "--env", f"PGDATA={VOLUME}/data", "--mount", f"type=volume,dst={VOLUME}",
              image, "postgres", *settings)


def wait_command() -> str:
    """Until the server answers over the loopback; on failure, why (the last attempt's error,
    or the container's log when it stopped)."""
    alive = sh("docker", "inspect", "-f", "{{.State.Running}}", NAME)
    logs = sh("docker", "logs", "--tail", "30", NAME)
    probe = "psql -X -q -d postgres -c 'SELECT 1' >/dev/null"
    return (f"for i in $(seq {READY_SECONDS}); do {probe} 2>/dev/null && exit 0; "
            f"[ \"$({alive})\" = true ] || {{ {logs} 2>&1; exit 1; }}; sleep 1; done; {probe}")


def port(output: str) -> int:
    """The host port in `docker port` output ('127.0.0.1:32768')."""
    return int(output.split()[0].rpartition(":")[2])


def prepare(host: DbHost, manifest: Manifest, configured_mb: int | None) -> int:
    """Remove a killed drill's leftovers, then refuse, before anything else changes, a drill
    the host has no Docker, room or memory for; the container's memory limit."""
    facts = parse_facts(host.run(facts_command(host.work), root=True,
                                 what="checking the host for the drill")[1])
    if facts.busy:
        raise OpsError(f"{host.address} is running its scheduled restore drill now",
                       hint="nothing was changed; wait for it to end (on the host: journalctl "
                       f"-fu {SCHEDULED_UNIT}), then verify again")
    if not facts.docker:
        raise OpsError(f"{host.address} has no Docker for the drill's scratch server",
                       hint="run: inv deploy (it installs Docker), then verify again")
    if problems := space_problems(facts, manifest):
        dump, data = needs(manifest)
        raise OpsError(f"not enough disk on {host.address} to drill {manifest.id}: "
                       + "; ".join(problems) + f" (the dump {human(dump)}, the restored "
                       f"database {human(manifest.database_size)} plus {GROWTH}% and "
                       f"{human(MARGIN)} for WAL and the image: {human(data)})",
                       hint="nothing was changed; free space on the host (e.g. docker image "
                       "prune) or grow its disk, then verify again")
    memory = memory_limit(facts.memory, configured_mb)
    if memory < MIN_MEMORY:
        raise OpsError(f"{host.address} has {human(facts.memory)} of memory available: too "
                       f"little for a scratch server of at least {human(MIN_MEMORY)} beside "
                       "the running stack", hint="nothing was changed; verify at a quieter "
                       "time, or set backups.drill_memory_mb")
    return memory


@contextmanager
def server(host: DbHost, image: str, memory: int) -> Iterator[DbHost]:
    """The scratch server running `image`, with an empty database DATABASE, reached from the
    host as a DbHost; the container and its volume removed on the way out, however it is left."""
    password = secrets.token_urlsafe(24)
    console.redact(password)
    env_file = f"{host.work}/drill.env"
    host.put(f"POSTGRES_PASSWORD={password}\n".encode(), env_file)
    try:
        console.step(f"starting a scratch PostgreSQL ({image}, {human(memory)} of memory) "
                     f"on {host.address}")
        host.run(f"{run_command(image, memory, env_file)} >/dev/null; rc=$?; "
                 f"rm -f {shlex.quote(env_file)}; exit $rc", root=True,
                 what="starting the scratch server")
        published = host.run(sh("docker", "port", NAME, "5432/tcp"), root=True,
                             what="finding the scratch server's port")[1]
        scratch = host.beside(port(published), DATABASE, USER, password)
        scratch.run(wait_command(), root=True, what="waiting for the scratch server")
        scratch.run(sh("createdb", DATABASE), what="creating the scratch database")
        yield scratch
    finally:
        host.run(REMOVE, root=True, what="removing the scratch server", warn=True)
