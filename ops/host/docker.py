"""Docker Engine and the Compose v2 plugin: which packages, from where, per supported OS.

Pure: builds package lists and the commands that install them; nothing runs here.
"""

from __future__ import annotations

from ops.errors import OpsError
from ops.host.remote import sh

SUPPORTED = ("ubuntu-22.04", "ubuntu-24.04", "debian-12", "debian-13", "amzn-2023")
CODENAMES = {"ubuntu-22.04": "jammy", "ubuntu-24.04": "noble", "debian-12": "bookworm",
             "debian-13": "trixie"}
OFFICIAL = ["docker-ce", "docker-ce-cli", "containerd.io", "docker-compose-plugin"]
DISTRO = {
    "debian-13": ["docker.io", "docker-cli", "docker-compose"],
    "ubuntu-24.04": ["docker.io", "docker-compose-v2"],
    "ubuntu-22.04": ["docker.io", "docker-compose-v2"],
}
COMPOSE_RELEASE = "v2.29.7"
PLUGIN_DIR = "/usr/local/lib/docker/cli-plugins"


def check_supported(os: str) -> None:
    if os not in SUPPORTED:
        raise OpsError(f"the host runs {os}, which the toolkit does not support",
                       hint=f"use one of: {', '.join(SUPPORTED)}")


def packages(os: str, source: str) -> list[str]:
    """The packages that give this OS Docker Engine and Compose v2."""
    check_supported(os)
    if os == "amzn-2023":
        return ["docker"]  # Docker's repository has no AL2023 build; Compose comes as a plugin
    if source == "official":
        return OFFICIAL
    if os not in DISTRO:
        raise OpsError(f"{os} has no Compose v2 package of its own",
                       hint="set host.docker_source: official")
    return DISTRO[os]


def candidates() -> list[str]:
    """Every package name any variant uses (what the facts command asks about)."""
    names = [*OFFICIAL, "docker"] + [p for pkgs in DISTRO.values() for p in pkgs]
    return list(dict.fromkeys(names))


def repository_commands(os: str, source: str) -> list[str]:
    """Commands that add Docker's apt repository (idempotent), when it is the source."""
    if source != "official" or os == "amzn-2023":
        return []
    distro, codename = os.split("-")[0], CODENAMES[os]
    url = f"https://download.docker.com/linux/{distro}"
    entry = (f"deb [arch=$(dpkg --print-architecture) signed-by=/etc/apt/keyrings/docker.asc] "
             f"{url} {codename} stable")
    return [
        "install -d -m 0755 /etc/apt/keyrings",
        f"test -s /etc/apt/keyrings/docker.asc || curl -fsSL {sh(url + '/gpg')} "
        "-o /etc/apt/keyrings/docker.asc",
        f'echo "{entry}" > /etc/apt/sources.list.d/docker.list',
    ]


def compose_plugin_commands(os: str) -> list[str]:
    """Amazon Linux 2023 has no Compose package: the plugin binary, checksum verified."""
    if os != "amzn-2023":
        return []
    base = f"https://github.com/docker/compose/releases/download/{COMPOSE_RELEASE}"
    asset = "docker-compose-linux-$(uname -m)"
    return [
        f"install -d -m 0755 {PLUGIN_DIR}",
        f"cd {PLUGIN_DIR} && curl -fsSL -o {asset} {base}/{asset} "
        f"&& curl -fsSL {base}/{asset}.sha256 | sha256sum -c - "
        f"&& install -m 0755 {asset} docker-compose && rm -f {asset}",
    ]
