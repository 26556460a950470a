"""The extensions OpenLMIS needs, created in its database before the stack first starts.

A new RDS database has none, and nothing in OpenLMIS creates them where they are first used:
referencedata's migrations use `geometry` and `uuid_generate_v4()` (e.g. v15.4.0,
20170601183049628__add_location_to_facilities.sql), and upstream's RDS guide says to create
both by hand (openlmis-deployment, provision/RDS-configuration.md). Deploy does it as the
master user, who may create RDS's allow-listed extensions.
"""

from __future__ import annotations

from dataclasses import dataclass

from ops.plan import Action, Change

REQUIRED = ("uuid-ossp", "postgis")
INSTALLED_SQL = "SELECT extname FROM pg_extension ORDER BY 1"


@dataclass(frozen=True)
class Create:
    """Create these extensions (after installing a PostgreSQL client on the host if need be)."""

    names: tuple[str, ...]


def plan(database: str, installed: set[str] | None) -> list[Change[Create]]:
    """The change that creates what is missing; `installed` None: not known yet (the host has
    no PostgreSQL client to ask with), so every required one, if missing."""
    missing = tuple(n for n in REQUIRED if installed is None or n not in installed)
    if not missing:
        return []
    detail = "if missing, after installing a PostgreSQL client" if installed is None \
        else "before the stack starts"
    return [Change(Action.CREATE, f"extensions {', '.join(missing)} in {database}", detail,
                   payload=Create(missing))]


def create_sql(names: tuple[str, ...]) -> str:
    """CREATE EXTENSION IF NOT EXISTS for each name, quoted as an identifier."""
    return "".join('CREATE EXTENSION IF NOT EXISTS "{}";\n'.format(n.replace('"', '""'))
                   for n in names)
