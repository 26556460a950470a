"""The lab's PostgreSQL, handed over the way RDS hands one over.

What RDS does, from its user guide, and how the lab does the same:
- The master user is "NOSUPERUSER INHERIT CREATEDB CREATEROLE", granted `rds_superuser`; the
  real superuser is `rdsadmin`, which the customer never gets
  (Appendix.PostgreSQL.CommonDBATasks.Roles.rds_superuser.html). Here the bootstrap superuser
  is renamed `rdsadmin`, and `postgres` is made again as such a master.
- A new database has no extensions; rds_superuser members create those on the allow-list
  (PostgreSQL.Concepts.General.FeatureSupport.Extensions.html, `rds.allowed_extensions`).
  Here Debian's pgextwlist does the same, for the master only (`extwlist.extensions` is set
  on that role): the allow-listed extensions are created as if by a superuser.
- PostgreSQL 15 and later run with rds.force_ssl=1 (ssl-certificate-rotation-postgresql.html).
  Here pg_hba refuses every connection without TLS; the server's certificate is signed by the
  lab's CA (ops.lab.ca), against which clients verify it.
- Parameters belong to the control plane (parameter groups), not to the master: tune-db's
  lab target changes them as `rdsadmin`, with ALTER SYSTEM and a restart over SSH.
"""

from __future__ import annotations

import io
import tarfile
from typing import cast

from docker.models.containers import Container

from ops.errors import OpsError
from ops.lab import ca
from ops.lab.state import LabState

DATABASE = "open_lmis"
MASTER = "postgres"
ADMIN = "rdsadmin"
# What the master may create: RDS allows many more; these are OpenLMIS's and a few common ones.
ALLOWED_EXTENSIONS = ("uuid-ossp", "postgis", "pgcrypto", "pg_trgm", "hstore", "citext",
                      "btree_gist", "fuzzystrmatch", "unaccent", "pg_stat_statements")
# Bumped whenever the set-up changes: a lab database set up otherwise is made again.
SETUP = "rds-like-1"
TLS_DIR = "/etc/postgresql/lab"

CONF = f"""# the lab: as RDS hands a PostgreSQL instance over
listen_addresses = '*'
ssl = on
ssl_cert_file = '{TLS_DIR}/server.crt'
ssl_key_file = '{TLS_DIR}/server.key'
local_preload_libraries = 'pgextwlist'
extwlist.extensions = ''
"""
HBA = """# the lab: TLS or nothing over the network (rds.force_ssl=1)
local    all  all                peer map=lab
hostssl  all  all  0.0.0.0/0     scram-sha-256
host     all  all  0.0.0.0/0     reject
"""
# The OS user postgres may act as the bootstrap superuser under its old and new names.
IDENT = "lab postgres postgres\nlab postgres rdsadmin\nlab postgres lab_setup\n"


def configure(container: Container, lab: LabState, address: str, master_password: str,
              admin_password: str) -> None:
    """Set the server up as RDS hands it over (see the module's docstring). Idempotent.

    Passwords travel in a file removed right after use, never in a command line.
    """
    conf = _run(container, "ls -d /etc/postgresql/*/main").strip()
    key, cert = ca.server(lab, "db", address)
    _put(container, f"{TLS_DIR}/server.key", key)
    _put(container, f"{TLS_DIR}/server.crt", cert)
    _put(container, f"{conf}/conf.d/lab.conf", CONF.encode(), 0o644)
    _put(container, f"{conf}/pg_hba.conf", HBA.encode())
    _put(container, f"{conf}/pg_ident.conf", IDENT.encode())
    _run(container, f"chown -R postgres:postgres {TLS_DIR} {conf}; systemctl restart postgresql; "
                    "until pg_isready -q; do sleep 0.2; done")
    _psql(container, ADMIN if _can_log_in(container, ADMIN) else _rename_bootstrap(container),
          _roles_sql(master_password, admin_password))


def _can_log_in(container: Container, role: str) -> bool:
    code, _ = container.exec_run(["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-U",
                                  role, "-d", "postgres", "-c", "SELECT 1"])
    return code == 0


def _rename_bootstrap(container: Container) -> str:
    """Rename the bootstrap superuser `rdsadmin` (from another, temporary superuser, since a
    session cannot rename its own user); the role to go on as."""
    _psql(container, MASTER, "SELECT 'CREATE ROLE lab_setup SUPERUSER LOGIN' WHERE NOT EXISTS "
                             "(SELECT FROM pg_roles WHERE rolname = 'lab_setup')\\gexec")
    _psql(container, "lab_setup", f"ALTER ROLE {MASTER} RENAME TO {ADMIN};")
    return ADMIN


def _roles_sql(master_password: str, admin_password: str) -> str:
    def literal(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    allowed = literal(",".join(ALLOWED_EXTENSIONS))
    return "\n".join([
        "DROP ROLE IF EXISTS lab_setup;",
        f"ALTER ROLE {ADMIN} PASSWORD {literal(admin_password)};",
        "SELECT 'CREATE ROLE rds_superuser NOLOGIN' "
        "WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rds_superuser')\\gexec",
        f"SELECT 'CREATE ROLE {MASTER} LOGIN' "
        f"WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{MASTER}')\\gexec",
        f"ALTER ROLE {MASTER} LOGIN NOSUPERUSER INHERIT CREATEDB CREATEROLE "
        f"PASSWORD {literal(master_password)};",
        "GRANT pg_monitor, pg_signal_backend TO rds_superuser;",
        f"GRANT rds_superuser TO {MASTER} WITH ADMIN OPTION;",
        f"ALTER ROLE {MASTER} SET extwlist.extensions = {allowed};",
        f"SELECT 'CREATE DATABASE {DATABASE} OWNER {MASTER}' "
        f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{DATABASE}')\\gexec",
        "",
    ])


def _psql(container: Container, role: str, sql: str) -> None:
    _put(container, "/root/lab-init.sql", sql.encode())
    try:
        _run(container, f"runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -U {role} "
                        "-d postgres < /root/lab-init.sql")
    finally:
        container.exec_run(["rm", "-f", "/root/lab-init.sql"])


def _run(container: Container, script: str) -> str:
    code, out = container.exec_run(["bash", "-c", script])
    text = cast(bytes, out).decode(errors="replace")
    if code != 0:
        raise OpsError(f"setting up the lab database failed: {text.strip()[-800:]}",
                       hint=f"look at: docker logs {container.name}")
    return text


def _put(container: Container, path: str, data: bytes, mode: int = 0o600) -> None:
    directory, name = path.rsplit("/", 1)
    container.exec_run(["install", "-d", "-m", "755", directory])
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), mode
        tar.addfile(info, io.BytesIO(data))
    container.put_archive(directory, buffer.getvalue())
