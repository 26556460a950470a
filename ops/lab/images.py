"""The lab's host images: Debian 13 with systemd and sshd, built locally and cached.

`base` is a debootstrap root filesystem imported as an image (no registry needed); the others
add packages to it, and `drill` (verify-backup's scratch server, as postgis/postgis is on AWS)
runs the `postgres` one's server in the foreground. Each is built once and reused until
`inv lab.down --images`.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import docker
import docker.errors

from ops import console
from ops.errors import OpsError
from ops.lab.state import LABEL
from ops.stack.compose import stack_dir

REPO = "openlmis-ops-lab"
SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = (
    "openssh-server,sudo,ca-certificates,curl,gnupg,iproute2,procps,python3,"
    "systemd,systemd-sysv,dbus,zstd"
)
POSTGRES_MAJOR = 17  # trixie's
DERIVED = {
    "docker": ["docker.io", "docker-cli", "docker-compose"],
    "postgres": ["postgresql", f"postgresql-{POSTGRES_MAJOR}-postgis-3",
                 f"postgresql-{POSTGRES_MAJOR}-pgextwlist"],
}

# The Reference Distribution's double (compose/ref-distro/double): one shared image, and each
# upstream image name a one-layer image of it naming its role.
DOUBLE = f"{REPO}-double:{SUITE}"
DOUBLE_ROLES = {"gliderlabs/consul-server": "consul", "hashicorp/consul": "consul",
                "openlmis/nginx": "nginx",
                "openlmis/rsyslog": "rsyslog", "redis": "redis", "driesva/proftpd": "ftp",
                "alpine": "alpine", "nginx": "plain-nginx"}
DOUBLE_VOLUMES = {"nginx": ["/var/log/nginx", "/var/log/consul-template"],
                  "rsyslog": ["/var/log", "/etc/rsyslog.d"]}

# Each container makes its own SSH host keys on first boot: an image shares none.
HOSTKEY_UNIT = """[Unit]
Description=Generate this host's SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
"""


def tag(kind: str) -> str:
    """A derived image's tag names its packages' digest: a changed list makes a new image."""
    if kind == "base":
        return f"{REPO}:{SUITE}"
    digest = hashlib.sha256(" ".join(DERIVED[kind]).encode()).hexdigest()[:8]
    return f"{REPO}:{SUITE}-{kind}-{digest}"


def ensure(client: docker.DockerClient, kind: str) -> str:
    """The image's tag, building it (and the base it derives from) when missing."""
    name = tag(kind)
    if _exists(client, name):
        return name
    if kind == "base":
        _build_base(client, name)
    else:
        _derive(client, ensure(client, "base"), name, DERIVED[kind])
    return name


# The drill image's entrypoint, as postgis/postgis's behaves for the drill: a cluster in $PGDATA
# owned by `postgres` with the password $POSTGRES_PASSWORD (scram over the network), then the
# server in the foreground with the arguments after `postgres`.
DRILL_ENTRYPOINT = f"""#!/bin/bash
set -euo pipefail
bin=/usr/lib/postgresql/{POSTGRES_MAJOR}/bin
[ "${{1:-}}" = postgres ] && shift
install -d -o postgres -g postgres -m 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp) && chown postgres "$pwfile"
  printf '%s\\n' "$POSTGRES_PASSWORD" > "$pwfile"
  runuser -u postgres -- "$bin/initdb" -D "$PGDATA" -U postgres --pwfile="$pwfile" \\
    -A scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  echo 'host all all all scram-sha-256' >> "$PGDATA/pg_hba.conf"
fi
unset POSTGRES_PASSWORD
exec runuser -u postgres -- "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' "$@"
"""
DRILL_DOCKERFILE = """ARG BASE
FROM $BASE
COPY entrypoint /usr/local/bin/drill-entrypoint
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/drill-entrypoint"]
CMD ["postgres"]
"""


def drill(client: docker.DockerClient, major: int) -> str:
    """The drill image of PostgreSQL `major` (the lab has trixie's only), built when missing;
    its tag."""
    if major != POSTGRES_MAJOR:
        raise OpsError(f"the lab has no PostgreSQL {major} for the drill, only {POSTGRES_MAJOR}")
    base = ensure(client, "postgres")
    digest = hashlib.sha256((base + DRILL_DOCKERFILE + DRILL_ENTRYPOINT).encode()).hexdigest()
    name = f"{REPO}:{SUITE}-drill-{digest[:8]}"
    if _exists(client, name):
        return name
    console.step(f"building {name} (once)")
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for path, text, mode in (("Dockerfile", DRILL_DOCKERFILE, 0o644),
                                 ("entrypoint", DRILL_ENTRYPOINT, 0o755)):
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(text.encode()), mode
            tar.addfile(info, io.BytesIO(text.encode()))
    context.seek(0)
    try:
        client.images.build(fileobj=context, custom_context=True, tag=name,
                            buildargs={"BASE": base}, rm=True)
    except docker.errors.BuildError as exc:
        raise OpsError(f"building {name} failed: {exc}") from None
    console.ok(f"built {name}")
    return name


def build_stack(stack: str, names: list[str]) -> None:
    """The images `names` of a stack, built here from the base image: its double's
    (compose/STACK/double, for a stack of upstream images), else its own stand-in's
    (compose/STACK/image).

    Built every time: Docker's layer cache makes an unchanged build take a second, and an
    edited stand-in gets a new image id, which deploy then pushes.
    """
    if (stack_dir(stack) / "double").is_dir():
        _build_double(stack_dir(stack) / "double", names)
        return
    context = stack_dir(stack) / "image"
    if not context.is_dir():
        return
    client = docker.from_env()
    base = ensure(client, "base")
    for name in names:
        try:
            client.images.build(path=str(context), tag=name, buildargs={"BASE": base}, rm=True)
        except docker.errors.BuildError as exc:
            raise OpsError(f"building {name} failed: {exc}",
                           hint="check that the Debian mirror is reachable") from None


def double_roles(names: list[str]) -> dict[str, str]:
    """Each image a release runs (or builds FROM) → the double's role for it: the image's own
    name unless DOUBLE_ROLES says otherwise."""
    roles = {}
    for name in sorted(set(names)):
        repo = name.rpartition(":")[0] if ":" in name.rpartition("/")[2] else name
        roles[name] = DOUBLE_ROLES.get(repo, repo.rpartition("/")[2])
    return roles


def double_dockerfile(role: str, version: str) -> str:
    """The one-layer image of the shared double playing `role` (no HEALTHCHECK: upstream's
    images have none)."""
    lines = [f"FROM {DOUBLE}", f"ENV DOUBLE_ROLE={role} DOUBLE_VERSION={version}"]
    if role == "alpine":
        lines.append('CMD ["/bin/sh"]')
    elif role == "plain-nginx":  # the official nginx image's contract: conf.d, foreground
        lines.append('CMD ["nginx", "-g", "daemon off;"]')
    elif role in DOUBLE_ROLES.values():
        lines += [f'ENTRYPOINT ["python3", "-m", "double", "{role}"]', "CMD []"]
    else:
        lines.append('CMD ["./run.sh"]')
    if role in DOUBLE_VOLUMES:
        lines.append(f"VOLUME {json.dumps(DOUBLE_VOLUMES[role])}")
    return "\n".join(lines) + "\n"


def _build_double(context: Path, names: list[str]) -> None:
    """A stack's double (compose/STACK/double): the shared image, and each image name the
    release asks for as a one-layer image of it. An unchanged rebuild takes seconds."""
    client = docker.from_env()
    base = ensure(client, "base")
    try:
        client.images.build(path=str(context), tag=DOUBLE, buildargs={"BASE": base}, rm=True)
        for name, role in double_roles(names).items():
            version = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else "latest"
            client.images.build(fileobj=io.BytesIO(double_dockerfile(role, version).encode()),
                                tag=name, rm=True)
    except docker.errors.BuildError as exc:
        raise OpsError(f"building the double in {context} failed: {exc}",
                       hint="check that the Debian mirror is reachable") from None


def remove_all(client: docker.DockerClient) -> list[str]:
    """Every lab image, earlier versions too, derived ones before the base."""
    removed = []
    found = [t for image in client.images.list(name=REPO) for t in image.tags]
    for name in sorted(found, key=lambda t: t == tag("base")):
        client.images.remove(name, force=True)
        removed.append(name)
    return removed


def _exists(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def _build_base(client: docker.DockerClient, name: str) -> None:
    if not shutil.which("debootstrap"):
        raise OpsError("debootstrap is not installed", hint="run: make setup")
    with tempfile.TemporaryDirectory(prefix="lab-rootfs-") as tmp:
        root = Path(tmp) / "root"
        console.step(f"building {name} with debootstrap (about a minute, once)")
        with console.console.status(f"debootstrap {SUITE}"):
            run = subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", SUITE,
                 str(root), MIRROR],
                capture_output=True, text=True,
            )
        if run.returncode != 0:
            raise OpsError(f"debootstrap failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}",
                           hint="check that the Debian mirror is reachable, then run again")
        _prepare_rootfs(root)
        archive = Path(tmp) / "root.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(archive), "."], check=True)
        client.api.import_image_from_file(
            str(archive), repository=REPO, tag=SUITE, changes=['CMD ["/sbin/init"]']
        )
    console.ok(f"built {name}")


def _prepare_rootfs(root: Path) -> None:
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    unit = root / "etc/systemd/system/ssh-hostkeys.service"
    unit.write_text(HOSTKEY_UNIT)
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "ssh-hostkeys.service").symlink_to("/etc/systemd/system/ssh-hostkeys.service")
    # Units that only make noise (or hold the dpkg lock) inside a container.
    for masked in ("apt-daily.timer", "apt-daily-upgrade.timer", "systemd-modules-load.service",
                   "getty@tty1.service", "console-getty.service"):
        link = root / "etc/systemd/system" / masked
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    (root / "etc/hostname").write_text("lab-host\n")


def _derive(client: docker.DockerClient, base: str, name: str, packages: list[str]) -> None:
    console.step(f"building {name}: {' '.join(packages)} (once)")
    script = (
        "set -e; export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; "
        f"apt-get install -y -qq --no-install-recommends {' '.join(packages)} >/dev/null; "
        "apt-get clean; rm -rf /var/lib/apt/lists/*"
    )
    container = client.containers.run(base, ["bash", "-c", script], detach=True,
                                       labels={LABEL: "build"})
    try:
        with console.console.status(f"installing {', '.join(packages)}"):
            code = container.wait()["StatusCode"]
        if code != 0:
            logs = container.logs().decode(errors="replace")[-2000:]
            raise OpsError(f"building {name} failed:\n{logs}",
                           hint="check that the Debian mirror is reachable, then run again")
        container.commit(repository=REPO, tag=name.split(":")[1],
                         changes=['CMD ["/sbin/init"]'])
    finally:
        container.remove(force=True)
    console.ok(f"built {name}")
