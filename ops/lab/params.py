"""tune-db's target on the lab's PostgreSQL (no RDS): ALTER SYSTEM, reload, restart over SSH,
SHOW — as `rdsadmin`, the lab's stand-in for RDS's control plane, never as the master."""

from __future__ import annotations

import psycopg
from psycopg import sql

from ops import console
from ops.config import Environment
from ops.db import sizing
from ops.db.pg_settings import QUERY, Setting
from ops.errors import OpsError
from ops.lab.lab import Lab
from ops.plan import Plan

RESTART_TIMEOUT_S = 120


class LabParameters:
    """The lab server's settings: `postgresql.auto.conf` is its parameter group."""

    rds = False

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.lab = Lab.connect()
        self.instance_id = f"the lab PostgreSQL at {self.lab.running_database().address}"

    @property
    def label(self) -> str:
        return self.instance_id

    def connect(self, timeout: int = 10) -> psycopg.Connection:
        try:
            return self.lab.db_connection("postgres", admin=True, connect_timeout=timeout)
        except psycopg.OperationalError as exc:
            raise OpsError(f"cannot connect to {self.instance_id}: {exc}",
                           hint="run: inv lab.up") from None

    def instance_class(self) -> str:
        """The class the lab stands in for: configured, else the one size-db recommends."""
        return sizing.recommended_class(self.env.database)

    def settings(self) -> dict[str, Setting]:
        """The running engine's own description of its settings."""
        with self.connect() as conn:
            return {row[0]: Setting(*row) for row in conn.execute(QUERY).fetchall()}

    def current(self, names: list[str]) -> dict[str, str | None]:
        """What the server will run with: postgresql.auto.conf's value, else the running one.

        (pg_file_settings marks a static value waiting for a restart as an error, "could not
        be applied": it is still the value the server will start with.)
        """
        with self.connect() as conn:
            values: dict[str, str | None] = dict(conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [names]).fetchall())
            values.update(conn.execute(
                "SELECT name, setting FROM pg_file_settings WHERE name = ANY(%s) AND "
                "sourcefile LIKE '%%/postgresql.auto.conf' ORDER BY seqno",
                [names]).fetchall())
        return {name: values.get(name) for name in names}

    def pending_reboot(self) -> bool:
        with self.connect() as conn:
            row = conn.execute("SELECT bool_or(pending_restart) FROM pg_settings").fetchone()
        assert row is not None  # an aggregate answers one row
        return bool(row[0])

    def apply(self, plan: Plan) -> None:
        """ALTER SYSTEM each change, then reload: dynamic ones apply, static ones wait."""
        with self.connect() as conn:
            for change in plan:
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(
                    sql.Identifier(change.payload.name), sql.Literal(change.payload.value)))
            conn.execute("SELECT pg_reload_conf()")

    def reboot(self) -> None:
        """Restart PostgreSQL on the lab host over SSH; wait until it accepts connections."""
        from ops.host.connect import connect
        from ops.host.remote import Remote

        host = self.lab.running_database()
        with connect(host.address, user=host.user, key=host.key, known_hosts=host.known_hosts,
                     port=host.port) as ssh:
            Remote(ssh, host.address).run("systemctl restart postgresql",
                                          what="restarting PostgreSQL")
        console.wait_for(f"{self.instance_id} accepting connections", self._accepts,
                         timeout=RESTART_TIMEOUT_S, interval=1)

    def _accepts(self) -> bool:
        try:
            with self.connect(timeout=3) as conn:
                conn.execute("SELECT 1")
        except OpsError:
            return False
        return True

    def verify(self, wanted: dict[str, str]) -> list[str]:
        """Parameters whose running value (what SHOW reports) differs from the wanted one."""
        from ops.db.tuning import same

        settings = self.settings()
        with self.connect() as conn:
            running: dict[str, str] = dict(conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                [list(wanted)]).fetchall())
        return [n for n, v in wanted.items() if not same(running.get(n), v, settings[n])]
