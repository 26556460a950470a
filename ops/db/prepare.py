"""What the database needs before the stack first starts: the stack's own role, and the
extensions OpenLMIS uses. Asked and done as the master user, through the host."""

from __future__ import annotations

import shlex

from ops import console, secrets
from ops.config import Environment
from ops.db import approle, extensions
from ops.db.remote import attach
from ops.host.remote import Remote
from ops.plan import Change

Payload = approle.Setup | extensions.Create


def plan(env: Environment, remote: Remote, *, client: bool) -> list[Change[Payload]]:
    """The changes, asked from the host when it has a PostgreSQL `client` (else all that may
    be needed, done idempotently once deploy has installed one)."""
    db, role = env.database.name, env.database.app_username
    if not client:
        return [*approle.plan(db, role, env.database.master_username, None),
                *extensions.plan(db, None)]
    with attach(env, remote, install=False) as host:
        installed = host.sql(extensions.INSTALLED_SQL, what="listing the database's extensions")
        line = host.script(approle.FACTS_SQL, {"role": role}, what="reading the database's roles")
        facts = approle.parse_facts(line, line.startswith("t|")
                                    and host.logs_in(role, _password(env)))
    return [*approle.plan(db, role, env.database.master_username, facts),
            *extensions.plan(db, set(installed.split()))]


def apply(env: Environment, remote: Remote, payloads: list[Payload]) -> None:
    """The role first (it will own what the stack creates), then the extensions."""
    if not payloads:
        return
    with attach(env, remote, install=False) as host:  # the host steps installed psql
        for setup in [p for p in payloads if isinstance(p, approle.Setup)]:
            host.script(approle.setup_sql(setup, _password(env)),
                        {"role": setup.role, "database": host.db.name},
                        what=f"setting up database role {setup.role}")
            console.ok(f"database role {setup.role} owns {host.db.name}")
        for create in [p for p in payloads if isinstance(p, extensions.Create)]:
            host.run(f"psql -X -q -v ON_ERROR_STOP=1 -d {shlex.quote(host.db.name)}",
                     stdin=extensions.create_sql(create.names), what="creating extensions")
            console.ok(f"extensions {', '.join(create.names)} in {host.db.name}")


def _password(env: Environment) -> str:
    """database.app_password's value (deploy refused earlier without one)."""
    assert env.database.app_password
    return secrets.resolve(env, "database.app_password", env.database.app_password)
