"""The lab's PostgreSQL: a lab host running the Debian server, standing in for RDS."""

from __future__ import annotations

import io
import tarfile

from docker.models.containers import Container

from ops.errors import OpsError

DATABASE = "open_lmis"
USER = "postgres"
EXTENSIONS = ("uuid-ossp", "postgis")


def configure(container: Container, password: str) -> None:
    """Listen on the lab network, require passwords, create the database. Idempotent.

    The password travels in a file removed right after use, never in a command line.
    """
    conf = _run(container, "ls -d /etc/postgresql/*/main").strip()
    _run(container, (
        f"grep -q '^listen_addresses' {conf}/conf.d/lab.conf 2>/dev/null || "
        f"echo \"listen_addresses = '*'\" > {conf}/conf.d/lab.conf; "
        f"grep -q 'lab network' {conf}/pg_hba.conf || "
        f"echo 'host all all 0.0.0.0/0 scram-sha-256 # lab network' >> {conf}/pg_hba.conf; "
        "systemctl restart postgresql"
    ))
    quoted = password.replace("'", "''")
    sql = (
        f"ALTER ROLE {USER} PASSWORD '{quoted}';\n"
        f"SELECT 'CREATE DATABASE {DATABASE}' "
        f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{DATABASE}')\\gexec\n"
        f"\\c {DATABASE}\n"
        + "".join(f'CREATE EXTENSION IF NOT EXISTS "{e}";\n' for e in EXTENSIONS)
    )
    _put(container, "/root/lab-init.sql", sql.encode())
    try:
        _run(container, "until pg_isready -q; do sleep 0.2; done; "
                        "runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 < /root/lab-init.sql")
    finally:
        container.exec_run(["rm", "-f", "/root/lab-init.sql"])


def _run(container: Container, script: str) -> str:
    code, out = container.exec_run(["bash", "-c", script])
    text = out.decode(errors="replace")
    if code != 0:
        raise OpsError(f"setting up the lab database failed: {text.strip()[-800:]}",
                       hint=f"look at: docker logs {container.name}")
    return text


def _put(container: Container, path: str, data: bytes) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(path.rsplit("/", 1)[1])
        info.size, info.mode = len(data), 0o600
        tar.addfile(info, io.BytesIO(data))
    container.put_archive(path.rsplit("/", 1)[0], buffer.getvalue())
