"""PostgreSQL client work on the environment's host, where the database is reachable.

Only PostgreSQL knowledge lives here (libpq settings, psql, row counts, the client tools);
commands run, and files travel, through the host's one runner (ops.host.remote.Remote). The
password reaches the host only as a 0600 pgpass file written over SFTP into a private
temporary directory (removed on exit): never in a command line, output or exception text.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from ops import console, secrets, targets
from ops.config import Environment
from ops.errors import OpsError
from ops.host import docker, facts, system
from ops.host.remote import QUICK, SLOW, Remote
from ops.host.session import open_host
from ops.stack.release import CURRENT

WORK_ROOT = "/var/tmp/openlmis-db"
# A private directory for one session, made by the login user; its path. It records the SSH
# session (the shell's parent, sshd-session) that owns it: the directories of sessions that
# are gone (a task killed, a connection cut), fetched dumps included, are removed first.
MAKE_WORK = (f"mkdir -p {WORK_ROOT} && chmod 700 {WORK_ROOT} && "
             f"for d in {WORK_ROOT}/session.*; do [ -d \"$d\" ] || continue; "
             "p=$(cat \"$d/.session\" 2>/dev/null); "
             f"[ -n \"$p\" ] && {facts.ssh_session('$p')} || rm -rf \"$d\"; done; "
             f"d=$(mktemp -d {WORK_ROOT}/session.XXXXXX) && echo $PPID > \"$d/.session\" "
             "&& echo \"$d\"")
# What ensure_client needs to know, in one command: the OS (as deploy reads it), whether curl
# is there, the client's version.
CLIENT_FACTS = "; ".join([facts.OS, "echo curl=$(command -v curl)",
                          "echo pg_dump=$(pg_dump --version 2>/dev/null)"])
PG_DUMP_VERSION = "pg_dump --version 2>/dev/null || true"

# Every user table (not the extensions' own), with an exact row count, in one statement.
ROW_COUNTS_SQL = """
SELECT format('%I.%I', n.nspname, c.relname),
       (xpath('/row/c/text()', query_to_xml(
           format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname),
           false, true, '')))[1]::text::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1
""".strip()


READ_RELEASE = f"readlink {CURRENT} || true"


def release_name(readlink_output: str) -> str:
    """The release a /opt/openlmis/current symlink points at; 'none' without one."""
    return readlink_output.strip().rstrip("/").rsplit("/", 1)[-1] or "none"


def live_release(env: Environment) -> str:
    """The live release read over SSH alone; 'unknown' when the host cannot be reached."""
    try:
        with open_host(env) as remote:
            return release_name(remote.run(READ_RELEASE, what="reading the release"))
    except OpsError:
        return "unknown"


@dataclass
class DbHost:
    """The host (its one runner) plus the libpq settings to reach the database."""

    remote: Remote
    db: targets.DatabaseTarget
    work: str
    bindir: str = ""
    loopback: bool = False  # a server on the host's own loopback (verify-backup's): no TLS

    @property
    def libpq(self) -> str:
        """Shell prefix exporting the (non-secret) connection settings: TLS, the server
        verified against the CA bundle (as RDS's with rds.force_ssl); none on the loopback."""
        path = f"PATH={shlex.quote(self.bindir)}:$PATH " if self.bindir else ""
        work = shlex.quote(self.work)
        tls = ("PGSSLMODE=disable" if self.loopback else
               f"PGSSLMODE=verify-full PGSSLROOTCERT={work}/ca.pem")
        return (f"export {path}PGPASSFILE={work}/pgpass {tls} "
                f"PGHOST={shlex.quote(self.db.address)} PGPORT={self.db.port} "
                f"PGUSER={shlex.quote(self.db.user)} PGCONNECT_TIMEOUT=10; ")

    @property
    def address(self) -> str:
        return self.remote.address

    def command(self, script: str) -> str:
        """A bash script (pipefail) run with the libpq settings."""
        return f"bash -o pipefail -c {shlex.quote(self.libpq + script)}"

    def run(self, script: str, *, what: str, warn: bool = False, root: bool = False,
            stdin: str | None = None, timeout: float | None = QUICK) -> tuple[int, str]:
        """Run a bash script with the libpq settings through the runner, as the login user
        (as root with `root=True`), `stdin` on its standard input; its exit code and stdout.
        OpsError naming `what` on failure, unless `warn`; stopped after `timeout` seconds
        (None: no limit)."""
        outcome = self.remote.execute(self.command(script), what=what, root=root,
                                      check=not warn, hint="", timeout=timeout,
                                      stdin=None if stdin is None else [stdin.encode()])
        return outcome.code, outcome.out

    def sql(self, query: str, *, database: str | None = None, what: str = "a query",
            timeout: float | None = QUICK) -> str:
        """Run SQL with psql (unaligned, tuples only, stop on error); its output."""
        dbname = shlex.quote(database or self.db.name)
        return self.run(f"psql -X -At -v ON_ERROR_STOP=1 -d {dbname} -c {shlex.quote(query)}",
                        what=what, timeout=timeout)[1]

    def script(self, sql: str, variables: dict[str, str], *, database: str | None = None,
               what: str) -> str:
        """Run a psql script from stdin, where `:'name'` and `:"name"` quote each of
        `variables` as a literal or an identifier; its output (unaligned, tuples only)."""
        options = " ".join(f"-v {name}={shlex.quote(value)}" for name, value in variables.items())
        dbname = shlex.quote(database or self.db.name)
        return self.run(f"psql -X -At -q -v ON_ERROR_STOP=1 {options} -d {dbname}",
                        stdin=sql, what=what)[1]

    def logs_in(self, user: str, password: str) -> bool:
        """Whether `user` logs in with `password` (through a pgpass file of its own)."""
        path = f"{self.work}/pgpass-login"
        self.put(pgpass_line(replace(self.db, user=user), password).encode(), path)
        code, _ = self.run(f"PGPASSFILE={shlex.quote(path)} PGUSER={shlex.quote(user)} "
                           f"psql -X -At -d {shlex.quote(self.db.name)} -c 'SELECT 1' "
                           ">/dev/null 2>&1",
                           what=f"logging in as {user}", warn=True)
        self.run(f"rm -f {shlex.quote(path)}", what="cleaning up", warn=True)
        return code == 0

    def row_counts(self, database: str | None = None) -> dict[str, int]:
        out = self.sql(ROW_COUNTS_SQL, database=database, what="counting rows", timeout=SLOW)
        return parse_counts(out)

    def server_major(self) -> int:
        return int(self.sql("SHOW server_version_num", what="reading the server version")) // 10000

    def release(self) -> str:
        """The live release: the target of /opt/openlmis/current, else 'none'."""
        _, out = self.run(READ_RELEASE, what="reading the release")
        return release_name(out)

    def free_bytes(self, path: str) -> int:
        _, out = self.run(f"df -B1 --output=avail {shlex.quote(path)} | tail -1",
                          what="checking free space")
        return int(out.strip())

    def closed_files(self, directory: str) -> dict[str, int]:
        """The files in `directory` that no pg_dump process has open, with their sizes:
        complete, since pg_dump writes each file of a directory-format dump once. Listed
        BEFORE the open files are read (a file created in between is never taken for closed),
        sized after."""
        code, out = self.run(f"cd {shlex.quote(directory)} && pwd -P && ls -1 && echo / && "
                             "{ for p in $(pgrep -x pg_dump); do readlink /proc/$p/fd/*; done "
                             "2>/dev/null; true; } && echo // && find . -maxdepth 1 -type f "
                             "-printf '%f %s\\n'", what="listing the dump's files", warn=True)
        if code:
            return {}  # pg_dump has not created the directory yet
        here, *lines = out.splitlines()
        first, second = lines.index("/"), lines.index("//")  # ls never prints "/", readlink "//"
        busy = {path.rpartition("/")[2] for path in lines[first + 1:second]
                if path.rpartition("/")[0] == here}
        sizes = dict(line.rsplit(" ", 1) for line in lines[second + 1:])
        return {name: int(sizes[name]) for name in set(lines[:first]) - busy if name in sizes}

    def cpus(self) -> int:
        return int(self.run("nproc", what="counting the host's CPUs")[1])

    def put(self, data: bytes, path: str) -> None:
        """A file of the session (the login user's, 0600 before its first byte) through the
        runner."""
        self.remote.put(path, data, 0o600, root=False)

    def beside(self, port: int, database: str, user: str, password: str) -> DbHost:
        """The same host and client reaching another server, one on the host's loopback at
        `port`: its pgpass in a private subdirectory of this session's (removed with it)."""
        db = targets.DatabaseTarget("127.0.0.1", port, database, user)
        work = f"{self.work}/loopback-{port}"
        self.remote.run(f"install -d -m 700 {shlex.quote(work)}", root=False,
                        what="making a private directory", hint="")
        other = DbHost(self.remote, db, work, self.bindir, loopback=True)
        other.put(pgpass_line(db, password).encode(), f"{work}/pgpass")
        return other


def parse_counts(text: str) -> dict[str, int]:
    """psql -At output of ROW_COUNTS_SQL ('schema.table|count' lines) as a dict."""
    counts = {}
    for line in text.splitlines():
        if line.strip():
            name, _, count = line.rpartition("|")
            counts[name] = int(count)
    return counts


def pgpass_line(db: targets.DatabaseTarget, password: str) -> str:
    """One ~/.pgpass line; ':' and '\\' escaped as libpq requires."""
    def esc(value: str) -> str:
        return value.replace("\\", "\\\\").replace(":", "\\:")
    return f"{esc(db.address)}:{db.port}:*:{esc(db.user)}:{esc(password)}\n"


def client_major(version_output: str) -> int | None:
    """The major version in `pg_dump --version` output, None when absent."""
    found = re.search(r"\(PostgreSQL\)\s+(\d+)", version_output)
    return int(found.group(1)) if found else None


@dataclass(frozen=True)
class ClientFacts:
    os: str  # `debian-13`…, as deploy reads it
    curl: bool
    client: int | None  # pg_dump's major version, None without one


def client_facts(output: str) -> ClientFacts:
    """CLIENT_FACTS' output, read."""
    values = dict(line.partition("=")[::2] for line in output.splitlines())
    return ClientFacts(facts.parse(output).os, bool(values.get("curl", "").strip()),
                       client_major(values.get("pg_dump", "")))


@contextmanager
def session(env: Environment) -> Iterator[DbHost]:
    """Connect to the host, then as `attach` does."""
    with open_host(env) as remote, attach(env, remote) as host:
        yield host


@contextmanager
def attach(env: Environment, remote: Remote, *, install: bool = True) -> Iterator[DbHost]:
    """The database from a host already connected: a private directory with the pgpass file
    and the CA bundle, and (with `install`) a PostgreSQL client >= the server's."""
    password = secrets.resolve(env, "database.master_password", env.database.master_password)
    db = targets.database(env)
    if not db.ca_bundle:
        raise OpsError(f"no CA bundle to verify the database server {db.address} with",
                       hint="set database.ca_bundle to the RDS CA bundle's path")
    work = remote.run(MAKE_WORK, root=False, what="making the session's private directory",
                      hint="").strip()
    host = DbHost(remote, db, work)
    try:
        host.put(pgpass_line(db, password).encode(), f"{work}/pgpass")
        host.put(db.ca_bundle, f"{work}/ca.pem")
        if install:
            ensure_client(host, env.database.engine_version)
        yield host
    finally:
        remote.run(f"rm -rf {shlex.quote(work)}", root=False, check=False)


def ensure_client(host: DbHost, major: str) -> None:
    """curl (dump files travel with it) and pg_dump/pg_restore/psql at least the server's
    major version, installed when missing the way deploy installs them: the OS's package
    manager, PGDG when the distribution lacks that major. Idempotent.

    Without any client yet, that of `major` (the configured engine version) comes first, to
    ask the server its version.
    """
    found = client_facts(host.run(CLIENT_FACTS, what="checking the client tools")[1])
    os, client = found.os, found.client
    docker.check_supported(os)
    if not found.curl:  # first: adding the PGDG repository needs it
        _install(host, os, "curl", [])
    if not client:
        _install(host, os, system.postgres_client(os, major),
                 system.postgres_repository_commands(os, major))
        client = client_major(host.run(PG_DUMP_VERSION, what="checking pg_dump")[1])
    server = host.server_major()
    if (client or 0) < server:
        _install(host, os, system.postgres_client(os, str(server)),
                 system.postgres_repository_commands(os, str(server)))
        client = server
    bindir = f"/usr/lib/postgresql/{max(server, client or 0)}/bin"
    if host.run(f"test -x {bindir}/pg_dump", what="finding pg_dump", warn=True)[0] == 0:
        host.bindir = bindir


def _install(host: DbHost, os: str, package: str, repositories: list[str]) -> None:
    console.step(f"installing {package} on {host.address}")
    host.run(" && ".join(system.install_commands(os, [package], repositories)), root=True,
             timeout=SLOW, what=f"installing {package} (the database tasks need curl and a "
             "PostgreSQL client at least the server's major version)")
