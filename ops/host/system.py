"""System settings around Docker: daemon.json, a swap file, the PostgreSQL client. Pure."""

from __future__ import annotations

import hashlib
import json

from ops.host.docker import CODENAMES
from ops.host.remote import sh

APT = "DEBIAN_FRONTEND=noninteractive apt-get"
DAEMON_JSON_PATH = "/etc/docker/daemon.json"
SWAP_FILE = "/swapfile"
# The PostgreSQL major each distribution ships; others come from the PGDG repository.
DISTRO_POSTGRES = {"debian-12": "15", "debian-13": "17", "ubuntu-22.04": "14",
                   "ubuntu-24.04": "16"}


def daemon_json(*, swarm: bool = False) -> bytes:
    """Capped json-file logs (the 30 GB disk no longer fills) and live-restore, but on a swarm's
    node: Docker refuses `swarm init` and `join` with live-restore ("--live-restore daemon
    configuration is incompatible with swarm mode"; Docker docs, "Live restore": it applies to
    standalone containers, not swarm services)."""
    config: dict[str, object] = {"log-driver": "json-file",
                                 "log-opts": {"max-size": "20m", "max-file": "5"}}
    if not swarm:
        config["live-restore"] = True
    return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()


def daemon_json_sha256(*, swarm: bool = False) -> str:
    return hashlib.sha256(daemon_json(swarm=swarm)).hexdigest()


def swap_commands(gb: int) -> list[str]:
    """A swap file of `gb` GiB, enabled now and at boot (idempotent)."""
    return [
        f"test -f {SWAP_FILE} || {{ fallocate -l {gb}G {SWAP_FILE} && chmod 600 {SWAP_FILE} "
        f"&& mkswap {SWAP_FILE} >/dev/null; }}",
        f"swapon --show=NAME --noheadings | grep -qx {SWAP_FILE} || swapon {SWAP_FILE}",
        f"grep -q '^{SWAP_FILE} ' /etc/fstab || echo '{SWAP_FILE} none swap sw 0 0' >> /etc/fstab",
    ]


def postgres_client(os: str, major: str) -> str:
    """The client package matching the database server's major version."""
    return f"postgresql{major}" if os == "amzn-2023" else f"postgresql-client-{major}"


def postgres_repository_commands(os: str, major: str) -> list[str]:
    """The PGDG apt repository, when the distribution does not ship that major."""
    if os == "amzn-2023" or DISTRO_POSTGRES.get(os) == major:
        return []
    key = "/etc/apt/keyrings/pgdg.asc"
    return [
        "install -d -m 0755 /etc/apt/keyrings",
        f"test -s {key} || curl -fsSL https://www.postgresql.org/media/keys/ACCC4CF8.asc -o {key}",
        f'echo "deb [signed-by={key}] https://apt.postgresql.org/pub/repos/apt '
        f'{CODENAMES[os]}-pgdg main" > /etc/apt/sources.list.d/pgdg.list',
    ]


def install_commands(os: str, packages: list[str], repositories: list[str]) -> list[str]:
    """Install `packages` with the OS's package manager; on apt systems `repositories` (the
    commands adding them) come first."""
    names = " ".join(sh(p) for p in packages)
    if os == "amzn-2023":
        return [f"dnf install -y -q {names}"]
    return [*repositories, f"{APT} update -qq",
            f"{APT} install -y -qq --no-install-recommends {names}"]
