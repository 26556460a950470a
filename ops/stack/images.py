"""Images: what this machine has, and streaming the ones a host lacks over the SSH connection.

`docker save … | docker load` with no registry: used with --push-images, for hosts (like the
lab's) that cannot reach one. One stream carries every image, so shared layers travel once.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import docker
import docker.errors

from ops.errors import OpsError
from ops.host.remote import Remote

CHUNK = 1 << 20


def local_ids(images: list[str]) -> dict[str, str]:
    """Each image's id on this machine; OpsError naming those it lacks."""
    client = docker.from_env()
    ids: dict[str, str] = {}
    missing = []
    for name in images:
        try:
            ids[name] = client.images.get(name).attrs["Id"]
        except docker.errors.ImageNotFound:
            missing.append(name)
    if missing:
        raise OpsError(f"this machine lacks the image(s) {', '.join(missing)} to push",
                       hint="build or pull them here first (the lab stack builds its own)")
    return ids


def push(remote: Remote, images: list[str]) -> str:
    """Stream `docker save IMAGES` into `docker load` on the host."""
    save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    stdout, stderr = save.stdout, save.stderr
    assert stdout is not None and stderr is not None

    def chunks() -> Iterator[bytes]:
        while data := stdout.read(CHUNK):
            yield data

    try:
        out = remote.stream("docker load", chunks())
    finally:
        stdout.close()
        code = save.wait()
    if code != 0:
        raise OpsError(f"docker save {' '.join(images)} failed here: "
                       f"{stderr.read().decode(errors='replace')[-500:]}")
    return out
