"""A service's log lines: what its containers printed, and what it sent to syslog.

The OpenLMIS services log through logback's SyslogAppender to the `log` service (ref-distro
`config/log/logback.xml`: their own `org.openlmis.*` loggers go to SYSLOG only), which writes
`/var/log/messages` in the `syslog` volume (openlmis-rsyslog v3 `rsyslog.conf`, rsyslog's
default file format `TIMESTAMP HOSTNAME MESSAGE`). logback's syslog header names the sending
host (`InetAddress.getLocalHost().getHostName()`: in a container, its hostname), so a service's
syslog lines are those whose HOSTNAME is one of its containers'. A stack without that volume
(the lab's) has container output only. On a swarm the container output is the service's
tasks' on every node (`docker service logs`, asked of node 1, a manager); syslog is the `log`
task's node's own, not read there.

The commands and the parsing are pure; `logs`, `recent` and `stream` run them over a Remote.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass

from ops import console
from ops.config import Environment
from ops.errors import OpsError
from ops.host.remote import Remote, sh
from ops.host.session import open_host
from ops.stack import service_exec
from ops.stack.release import CURRENT, RELEASES

SYSLOG_VOLUME = "syslog"  # ref-distro docker-compose.yml: log's `syslog:/var/log`
MESSAGES = "messages"  # openlmis-rsyslog v3 rsyslog.conf: everything but mail, auth, cron, local1
_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # compose erases lines on a terminal
_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")
# grep and sed, line-buffered: awk (mawk) would hold a followed stream's lines back
_SYSLOG_FILTER = "grep --line-buffered -E \"^[^ ]+ ($hosts) \" | sed -u 's/^/S\\t/'"
_DOCKER_PREFIX = "sed -u 's/^/D\\t/'"
SINCE = '"$since"'  # the shell variable the follow command keeps


@dataclass(frozen=True)
class Line:
    when: datetime.datetime | None
    source: str  # "docker" (the container's output) or "syslog"
    text: str

    def render(self) -> str:
        stamp = f"{self.when:%Y-%m-%dT%H:%M:%SZ}" if self.when else " " * 20
        return f"{stamp} {self.source:<6} {self.text}"


@dataclass(frozen=True)
class Snapshot:
    """What the snapshot command found: the release's services and, when `service` is one of
    them, its last lines and where following them starts."""

    release: str
    services: tuple[str, ...]
    lines: tuple[Line, ...] = ()
    since: str = ""  # the host's time when read: container output follows from it
    hosts: str = ""  # the service's containers' hostnames, as an extended regex: `a|b`
    syslog: str = ""  # the messages file, "" when the stack has no syslog volume
    offset: int = 0  # its size when read: syslog lines follow from it


def _compose(project: str) -> str:
    return sh("docker", "compose", "--ansi", "never", "-p", project)


def _output(project: str, service: str, swarm: bool, *flags: str) -> str:
    """The command printing a service's container output, with times, without prefixes."""
    if swarm:  # `flags` are the toolkit's own, shell words as they are
        return (sh("docker", "service", "logs", "--no-task-ids", "--no-trunc", "--raw",
                   "--timestamps") + f" {' '.join(flags)} {sh(f'{project}_{service}')}")
    return (f"{_compose(project)} logs --no-color --no-log-prefix --timestamps "
            f"{' '.join(flags)} -- {sh(service)}")


def snapshot_command(project: str, release_dir: str, service: str, lines: int, *,
                     swarm: bool = False) -> str:
    """One command printing the release's services and, if `service` is one of them, its last
    `lines` lines of container output (`D` lines) and of syslog (`S` lines). Read-only."""
    compose, name = _compose(project), sh(service)
    label = "label=com.docker.compose."
    return "\n".join([
        f"cd {sh(release_dir)} 2>/dev/null || exit 0",
        "printf 'release\\t%s\\n' \"$(basename \"$(pwd -P)\")\"",
        f"services=$({compose} config --services) || exit 1",
        "printf 'service\\t%s\\n' $services",
        f"printf '%s\\n' $services | grep -qxF -- {name} || exit 0",
        "printf 'since\\t%s\\n' \"$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)\"",
        f"hosts=$(docker ps -aq --filter {sh(label + 'project=' + project)} "
        f"--filter {sh(label + 'service=' + service)} "
        "| xargs -r docker inspect -f '{{.Config.Hostname}}' | sed 's/[.]/\\\\./g' "
        "| paste -sd '|')",
        "printf 'hosts\\t%s\\n' \"$hosts\"",
        "dir=$(docker volume inspect -f '{{.Mountpoint}}' "
        f"{sh(f'{project}_{SYSLOG_VOLUME}')} 2>/dev/null)",
        'if [ -n "$dir" ] && [ -n "$hosts" ]; then',
        f'  file="$dir/{MESSAGES}"',
        "  size=$(stat -c %s \"$file\" 2>/dev/null || echo 0)",
        "  printf 'syslog\\t%s\\t%s\\n' \"$file\" \"$size\"",
        f'  cat "$file.1" "$file" 2>/dev/null | {_SYSLOG_FILTER} | tail -n {lines:d}',
        "fi",
        f"{_output(project, service, swarm, '--tail', str(lines))} 2>&1 | {_DOCKER_PREFIX}",
    ])


def follow_command(project: str, snapshot: Snapshot, service: str, *,
                   swarm: bool = False) -> str:
    """One command streaming the service's new lines, from where the snapshot ended, until the
    connection ends."""
    parts = [f"cd {sh(f'{RELEASES}/{snapshot.release}')} || exit 1",
             f"since={sh(snapshot.since)}",
             # compose stops following when the container stops: follow it again once it runs
             f"while :; do {_output(project, service, swarm, '--follow', '--since', SINCE)} "
             "</dev/null 2>&1; "
             "since=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ); sleep 2; "
             f"done | {_DOCKER_PREFIX} &"]
    if snapshot.syslog and snapshot.hosts:
        parts += [f"hosts={sh(snapshot.hosts)}",
                  f"tail -F -c +{snapshot.offset + 1:d} {sh(snapshot.syslog)} 2>/dev/null "
                  f"| {_SYSLOG_FILTER} &"]
    return "\n".join([*parts, "wait"])


def parse(output: str, lines: int) -> Snapshot:
    """The snapshot command's output; the last `lines` lines of both sources, in time order."""
    meta: dict[str, list[str]] = {}
    found: list[Line] = []
    for raw in output.splitlines():
        kind, _, rest = raw.partition("\t")
        if kind in ("D", "S"):
            if parsed := line(raw):
                found.append(parsed)
        else:
            meta.setdefault(kind, []).append(rest)
    syslog = (meta.get("syslog") or [""])[0].split("\t")
    return Snapshot(
        release=(meta.get("release") or [""])[0],
        services=tuple(s for s in meta.get("service", []) if s),
        lines=tuple(merge(found)[-lines:] if lines else []),
        since=(meta.get("since") or [""])[0],
        hosts=(meta.get("hosts") or [""])[0].strip(),
        syslog=syslog[0],
        offset=int(syslog[1]) if len(syslog) > 1 and syslog[1].isdigit() else 0)


def line(raw: str) -> Line | None:
    """One `D` (container output: `TIMESTAMP TEXT`) or `S` (syslog: `TIMESTAMP HOST TEXT`)
    line of the commands' output."""
    kind, _, rest = _ESCAPE.sub("", raw).rstrip("\r").partition("\t")
    if kind == "D":
        stamp, _, text = rest.partition(" ")
        when = _when(stamp)
        return Line(when, "docker", text if when else rest)
    if kind == "S":
        stamp, _, after = rest.partition(" ")
        return Line(_when(stamp), "syslog", after.partition(" ")[2])
    return None


def merge(found: list[Line]) -> list[Line]:
    """Lines of both sources in time order; a line without a time keeps the one before it in
    its source (each source is in order already, and the sort is stable)."""
    last: dict[str, datetime.datetime] = {}
    keyed = []
    for item in found:
        last[item.source] = item.when or last.get(item.source) or datetime.datetime.min.replace(
            tzinfo=datetime.UTC)
        keyed.append((last[item.source], item))
    return [item for _, item in sorted(keyed, key=lambda pair: pair[0])]


def _when(stamp: str) -> datetime.datetime | None:
    """An RFC 3339 time (Docker's nanoseconds, rsyslog's offset) in UTC."""
    match = _STAMP.match(stamp)
    if not match:
        return None
    base, fraction, zone = match.groups()
    text = f"{base}.{(fraction or '0')[:6]:0<6}{'+00:00' if zone == 'Z' else zone}"
    return datetime.datetime.fromisoformat(text).astimezone(datetime.UTC)


def read(remote: Remote, project: str, release_dir: str, service: str,
         lines: int, *, swarm: bool = False) -> Snapshot:
    """The service's last lines in a release on the host (`release_dir`: `current` or one
    release's directory)."""
    return parse(remote.run(snapshot_command(project, release_dir, service, lines, swarm=swarm),
                            what=f"reading the logs of {service}"), lines)


def recent(remote: Remote, project: str, release_id: str, service: str,
           lines: int, *, swarm: bool = False) -> list[str]:
    """The service's last lines in a release, rendered: the health gate's failure report,
    which shows what it can and never stands in the way of the rollback."""
    out = remote.run(snapshot_command(project, f"{RELEASES}/{release_id}", service, lines,
                                      swarm=swarm),
                     check=False, what=f"reading the logs of {service}")
    return [item.render() for item in parse(out, lines).lines]


def logs(env: Environment, service: str, *, lines: int = 100, follow: bool = False) -> None:
    """Print a service's last lines in the live release, then with `follow` its new ones as
    they come, until interrupted."""
    if lines < 0:
        raise OpsError(f"--lines {lines}: give a number of lines, 0 or more")
    with open_host(env) as remote:
        found = read(remote, env.project, CURRENT, service, lines, swarm=env.host.swarm)
        service_exec.known(found.release, found.services, service, remote.address, env.name)
        for item in found.lines:
            console.say(item.render())
        if follow:
            with suppress(KeyboardInterrupt):  # how following ends: not a failure
                for item in stream(remote, follow_command(env.project, found, service,
                                                          swarm=env.host.swarm), service):
                    console.say(item.render())


def stream(remote: Remote, command: str, service: str) -> Iterator[Line]:
    """The lines the follow command prints, as they come."""
    for raw in remote.follow(command, what=f"following the logs of {service}"):
        if parsed := line(raw):
            yield parsed
