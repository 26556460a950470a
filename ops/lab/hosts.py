"""Lab hosts: containers that boot systemd and sshd, standing in for EC2 instances and RDS."""

from __future__ import annotations

import io
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import Mount

from ops.errors import OpsError
from ops.lab.state import LABEL, LabState


@dataclass(frozen=True)
class LabHost:
    """How to reach one lab host over SSH."""

    name: str
    address: str
    key: Path
    known_hosts: Path
    user: str = "root"
    port: int = 22


def host_config(client: docker.DockerClient, network: str) -> dict[str, object]:
    """Container settings that let systemd (and a Docker engine) run inside the host.

    `--privileged` where this machine allows every capability; otherwise (a capability
    bounding set without CAP_SYS_RESOURCE) all capabilities but that one, unconfined, with
    /proc and /sys paths unmasked (what `--security-opt systempaths=unconfined` does).
    """
    common: dict[str, Any] = {
        "network_mode": network,
        "tmpfs": {"/run": "", "/run/lock": ""},
        "mounts": [Mount(target="/var/lib/docker", source=None, type="volume")],
    }
    if _bounding_set_has(24):
        return client.api.create_host_config(privileged=True, cgroupns="host", **common)
    config = client.api.create_host_config(
        cap_add=["ALL"],
        cap_drop=["SYS_RESOURCE"],
        security_opt=["seccomp=unconfined", "apparmor=unconfined"],
        binds={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
        **common,
    )
    config.update(MaskedPaths=[], ReadonlyPaths=[])
    return config


def _bounding_set_has(capability: int) -> bool:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return bool(int(line.split()[1], 16) >> capability & 1)
    return False


def find(client: docker.DockerClient, lab: LabState, name: str) -> Container | None:
    try:
        return client.containers.get(f"{lab.name}-{name}")
    except docker.errors.NotFound:
        return None


def listed(client: docker.DockerClient, lab: LabState) -> list[Container]:
    return client.containers.list(all=True, filters={"label": f"{LABEL}={lab.name}"})


def image_id(container: Container) -> str:
    """The id of the image `container` was made from."""
    image = container.image
    assert image is not None and image.id is not None, container.name
    return image.id


def start(client: docker.DockerClient, lab: LabState, name: str, image: str, role: str) -> LabHost:
    """Start (or find running) the host `name`, reachable with the lab's key. Idempotent.

    A running host whose key is already trusted is returned at once, without a docker exec.
    """
    container = find(client, lab, name)
    if container is not None and container.status == "running":
        address = _address(container, lab)
        if _trusted(lab.known_hosts, address):
            return _lab_host(lab, name, address)
    if container is None:
        created = client.api.create_container(
            image,
            name=f"{lab.name}-{name}",
            hostname=name,
            labels={LABEL: lab.name, f"{LABEL}.role": role},
            host_config=host_config(client, lab.network),
        )
        container = client.containers.get(created["Id"])
    if container.status != "running":
        container.start()
    container.reload()
    _wait_booted(container)
    _authorize(container, lab.ensure_key())
    address = _address(container, lab)
    _trust(container, lab.known_hosts, address)
    return _lab_host(lab, name, address)


def lookup(client: docker.DockerClient, lab: LabState, name: str, what: str) -> LabHost:
    """The running host `name`, reachable with the lab's key; OpsError naming `what` otherwise.
    Read-only: it starts nothing."""
    container = find(client, lab, name)
    if container is None:
        raise OpsError(f"the lab has no host for {what}",
                       hint="run: inv provision (a lab host comes with each instance it creates)")
    address = _address(container, lab) if container.status == "running" else ""
    if not address:
        raise OpsError(f"the lab host {container.name} for {what} is {container.status}",
                       hint="run: inv lab.up (it starts the lab's stopped hosts)")
    if not _trusted(lab.known_hosts, address):
        raise OpsError(f"the lab's known_hosts lacks the key of {container.name} ({what})",
                       hint="run: inv lab.up (it records the keys of the lab's hosts)")
    return _lab_host(lab, name, address)


def _lab_host(lab: LabState, name: str, address: str) -> LabHost:
    return LabHost(name=name, address=address, key=lab.key, known_hosts=lab.known_hosts)


def _address(container: Container, lab: LabState) -> str:
    return container.attrs["NetworkSettings"]["Networks"].get(lab.network, {}).get("IPAddress", "")


def _trusted(known_hosts: Path, address: str) -> bool:
    if not known_hosts.exists():
        return False
    return any(line.split(" ", 1)[0] == address for line in known_hosts.read_text().splitlines())


def remove(container: Container) -> None:
    container.remove(force=True, v=True)


def _wait_booted(container: Container, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, _ = container.exec_run(["systemctl", "is-active", "ssh"])
        if code == 0:
            return
        time.sleep(0.5)
    raise OpsError(f"lab host {container.name} did not start sshd within {timeout:.0f}s",
                   hint=f"look at: docker logs {container.name}")


def _authorize(container: Container, key: Path) -> None:
    public = key.with_suffix(".pub").read_bytes()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(".ssh/authorized_keys")
        info.size, info.mode = len(public), 0o600
        tar.addfile(info, io.BytesIO(public))
    container.exec_run(["install", "-d", "-m", "700", "/root/.ssh"])
    container.put_archive("/root", buffer.getvalue())


def _trust(container: Container, known_hosts: Path, address: str) -> None:
    """Record the host's key in the lab's known_hosts, as an operator would after checking it."""
    code, out = container.exec_run(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"])
    if code != 0:
        raise OpsError(f"lab host {container.name} has no SSH host key")
    entry = f"{address} {' '.join(cast(bytes, out).decode().split()[:2])}"
    lines = known_hosts.read_text().splitlines() if known_hosts.exists() else []
    lines = [line for line in lines if line.split(" ", 1)[0] != address]
    known_hosts.write_text("\n".join([*lines, entry]) + "\n")
