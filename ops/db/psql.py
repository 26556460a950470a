"""psql to the environment's database, run on its host (the database is reachable only from
there), on the operator's terminal.

The database tasks' own session (ops.db.remote.attach) prepares the host: a private directory
holding the master password as a 0600 pgpass file written over SFTP and the CA bundle, and a
client at least the server's major version; it is removed when psql ends. psql verifies the
server against that bundle (sslmode=verify-full) and reads the password from the file: the
password is in no command line and in no process's environment, only the file's path is.
"""

from __future__ import annotations

import shlex

from ops import targets
from ops.config import Environment
from ops.db import remote as db_remote
from ops.db.remote import DbHost
from ops.host import terminal
from ops.host.session import open_host


def command(host: DbHost, sql: str | None) -> str:
    """The shell command running psql with the session's libpq settings: interactive without
    `sql`, else that one statement (no psqlrc, stop at the first error). Pure."""
    dbname = shlex.quote(host.db.name)
    if sql is None:
        return host.command(f"exec psql -d {dbname}")
    return host.command(f"exec psql -X -v ON_ERROR_STOP=1 -d {dbname} -c {shlex.quote(sql)}")


def run(env: Environment, sql: str | None = None) -> int:
    """psql on the host, on this terminal; its exit status."""
    target = targets.host(env)
    with open_host(env) as remote, db_remote.attach(env, remote) as host:
        tty = terminal.interactive()
        return terminal.attached(terminal.argv(target, command(host, sql), tty=tty))
