"""Facts about a host, gathered with ONE remote command and parsed by a pure function.

The command prints `key=value` lines: the OS, which of the candidate packages are installed,
the Docker service and Compose, daemon.json's checksum, log rotation, swap, this connection's
session process (the deploy lock records it), and — when Docker runs — the stack's release
state, containers and which images are present.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ops.host import logrotate
from ops.host.remote import sh

ROOT = "/opt/openlmis"

# The OS's id and version (`os_id=debian`, `os_version=13`): one part of any facts command.
OS = ". /etc/os-release; echo os_id=$ID; echo os_version=$VERSION_ID"


def ssh_session(pid: str) -> str:
    """A shell test: process `pid` (a shell word) is an SSH session's (sshd, sshd-session).
    What the deploy lock and the database tasks' private directories record of their owner."""
    return f'[ "$(head -c 4 /proc/{pid}/cmdline 2>/dev/null)" = sshd ]'


@dataclass(frozen=True)
class Container:
    service: str
    state: str
    status: str


@dataclass(frozen=True)
class Facts:
    os_id: str = ""
    os_version: str = ""
    packages: frozenset[str] = frozenset()
    docker_enabled: bool = False
    docker_active: bool = False
    compose_version: str = ""
    daemon_json_sha256: str = ""
    logrotate_sha256: str = ""
    logrotate_timer: str = ""  # enabled/active
    swap_bytes: int = 0
    session_pid: int = 0
    boot_id: str = ""
    swarm: str = ""  # Docker's LocalNodeState: inactive, active… ("" without Docker)
    current: str = ""
    releases: tuple[str, ...] = ()
    containers: tuple[Container, ...] = ()
    images: dict[str, str] = field(default_factory=dict)

    @property
    def os(self) -> str:
        """`debian-13`, `ubuntu-24.04`, `amzn-2023`…"""
        return f"{self.os_id}-{self.os_version}"


def command(packages: list[str], images: list[str], project: str) -> str:
    """The one command that prints every fact (read-only)."""
    pkgs = " ".join(sh(p) for p in packages)
    imgs = " ".join(sh(i) for i in images)
    return "; ".join([
        OS,
        # the SSH session process this command runs under (sudo or not): the lock records it
        "p=$$; while [ \"$p\" -gt 1 ] && [ \"$(head -c 4 /proc/$p/cmdline)\" != sshd ]; do "
        "p=$(cut -d' ' -f4 /proc/$p/stat); done; echo session_pid=$p",
        "echo boot_id=$(cat /proc/sys/kernel/random/boot_id)",
        "if command -v dpkg-query >/dev/null; then "
        f"dpkg-query -W -f='${{db:Status-Abbrev}} package=${{Package}}\\n' {pkgs} 2>/dev/null "
        "| sed -n 's/^ii *//p'; "
        f"else rpm -q --qf 'package=%{{NAME}}\\n' {pkgs} 2>/dev/null | grep '^package='; fi",
        "echo docker_enabled=$(systemctl is-enabled docker 2>/dev/null)",
        "echo docker_active=$(systemctl is-active docker 2>/dev/null)",
        "echo compose_version=$(docker compose version --short 2>/dev/null)",
        "echo daemon_json=$(sha256sum /etc/docker/daemon.json 2>/dev/null | cut -d' ' -f1)",
        *logrotate.fact_commands(),
        "echo swap_bytes=$(swapon --show=SIZE --bytes --noheadings 2>/dev/null "
        "| awk '{s+=$1} END {print s+0}')",
        f"echo current=$(basename \"$(readlink {ROOT}/current 2>/dev/null)\")",
        f"ls -1t {ROOT}/releases 2>/dev/null | grep -v '\\.partial$' | sed 's/^/release=/'",
        "systemctl is-active -q docker 2>/dev/null || exit 0",
        "echo swarm=$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)",
        f"docker ps -a --filter label=com.docker.compose.project={sh(project)} --format "
        "'container={{.Label \"com.docker.compose.service\"}}\t{{.State}}\t{{.Status}}'",
        f"for i in {imgs}; do printf 'image=%s\\t%s\\n' \"$i\" "
        "\"$(docker image inspect -f '{{.Id}}' \"$i\" 2>/dev/null)\"; done" if images else "true",
    ])


def parse(text: str) -> Facts:
    """Facts from the command's output."""
    values: dict[str, str] = {}
    packages, releases, containers, images = set(), [], [], {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "package":
            packages.add(value)
        elif key == "release":
            releases.append(value)
        elif key == "container":
            service, state, status = [*value.split("\t"), "", ""][:3]
            containers.append(Container(service, state, status))
        elif key == "image":
            name, _, image_id = value.partition("\t")
            if image_id.strip():
                images[name] = image_id.strip()
        elif key:
            values[key] = value.strip()
    return Facts(
        os_id=values.get("os_id", ""),
        os_version=values.get("os_version", "").strip('"'),
        packages=frozenset(packages),
        docker_enabled=values.get("docker_enabled") == "enabled",
        docker_active=values.get("docker_active") == "active",
        compose_version=values.get("compose_version", ""),
        daemon_json_sha256=values.get("daemon_json", ""),
        logrotate_sha256=values.get("logrotate", ""),
        logrotate_timer=values.get("logrotate_timer", ""),
        swap_bytes=int(values.get("swap_bytes") or 0),
        session_pid=int(values.get("session_pid") or 0),
        boot_id=values.get("boot_id", ""),
        swarm=values.get("swarm", ""),
        current=values.get("current", ""),
        releases=tuple(releases),
        containers=tuple(containers),
        images=images,
    )
