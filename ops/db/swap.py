"""Restoring beside the live database, then swapping names: the names, and the SQL.

A dump is restored into `<db>_incoming`; one transaction then renames the live database to
`<db>_before_<time>` (kept until the operator drops it) and the incoming one to `<db>`. Renames
are transactional in PostgreSQL, so the database is always either the old or the restored one,
and going back is the same swap with the kept copy. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ops.errors import OpsError

INCOMING, BEFORE = "_incoming", "_before_"
# The longest name PostgreSQL keeps (NAMEDATALEN - 1).
MAX_NAME = 63
# The database psql connects to for what no session may hold open: create, drop, rename.
MAINTENANCE_DB = "postgres"

# Settings of a new database taken from the live one, so the restored data sorts and compares
# as before. Prints owner, encoding, collate, ctype; nothing when there is no live database.
LIVE_SETTINGS_SQL = """
SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype
FROM pg_database WHERE datname = :'live'
"""

# psql variables: incoming (and, from LIVE_SETTINGS_SQL, owner, encoding, collate, ctype).
CREATE_SQL = """
DROP DATABASE IF EXISTS :"incoming" WITH (FORCE);
CREATE DATABASE :"incoming" TEMPLATE template0 OWNER :"owner" ENCODING :'encoding'
  LC_COLLATE :'collate' LC_CTYPE :'ctype';
"""
CREATE_DEFAULT_SQL = """
DROP DATABASE IF EXISTS :"incoming" WITH (FORCE);
CREATE DATABASE :"incoming" TEMPLATE template0;
"""
DROP_SQL = 'DROP DATABASE IF EXISTS :"incoming" WITH (FORCE);\n'

# psql variables: live, incoming, kept. Client sessions still open on either database are
# ended first (the stack is stopped by then); autovacuum workers are not ours to end (they run
# as the superuser), and a rename signals them itself. Without a live database, the incoming
# one just takes its name.
SWAP_SQL = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
  WHERE datname IN (:'live', :'incoming') AND pid <> pg_backend_pid()
    AND backend_type = 'client backend';
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'live') AS has_live \\gset
BEGIN;
\\if :has_live
ALTER DATABASE :"live" RENAME TO :"kept";
\\endif
ALTER DATABASE :"incoming" RENAME TO :"live";
COMMIT;
"""

# The copies restores kept of a live database (psql variable `prefix`: `<db>_before_`).
KEPT_SQL = """
SELECT datname FROM pg_database WHERE starts_with(datname, :'prefix') ORDER BY 1 DESC
"""

# The roles named in the psql variable `roles` (one quoted identifier per line, as pg_restore
# prints them), one row each, as `r`.
_ROLES = """(SELECT DISTINCT (parse_ident(x))[1] AS r
  FROM unnest(string_to_array(:'roles', E'\\n')) AS x WHERE x <> '') named"""

# Of those, the ones the connected user cannot act as: pg_restore gives every object its
# owner, which a non-superuser may only do for roles it can SET ROLE to (`privilege`: SET from
# PostgreSQL 16, where a CREATEROLE user's ADMIN OPTION on the roles it made is membership
# without SET; MEMBER before).
FOREIGN_OWNERS_SQL = f"""
SELECT string_agg(r, ', ' ORDER BY r) FROM {_ROLES}
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r)
   OR NOT pg_has_role(current_user, (SELECT oid FROM pg_roles WHERE rolname = r), :'privilege')
"""

# Of those, the ones the server lacks.
MISSING_ROLES_SQL = f"""
SELECT string_agg(r, ', ' ORDER BY r) FROM {_ROLES}
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r)
"""

# Those created (without login) where they are missing: the drill's scratch server.
CREATE_ROLES_SQL = f"""
SELECT format('CREATE ROLE %I', r) FROM {_ROLES}
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) \\gexec
"""

# pg_restore's database-level statements (the archive's DATABASE PROPERTIES, ACL and COMMENT
# of the database) as they begin a line, and the database identifier each names.
_STATEMENT = re.compile(
    r'^((?:ALTER DATABASE|COMMENT ON DATABASE|ALTER ROLE (?:"(?:[^"]|"")+"|\S+) IN DATABASE|'
    r'(?:GRANT|REVOKE) .*? ON DATABASE) )("(?:[^"]|"")+"|[^\s;"]+)', re.MULTILINE)

_SKIPPED = re.compile(
    r'^(\\connect |CREATE DATABASE |ALTER DATABASE (?:"(?:[^"]|"")+"|\S+) OWNER TO )')


@dataclass(frozen=True)
class Names:
    """The live database, the one being restored beside it, and the name the live one keeps
    after the swap."""

    live: str
    incoming: str
    kept: str

    @classmethod
    def restore(cls, live: str, at: datetime) -> Names:
        return cls(live, live + INCOMING, kept_name(live, at))

    @classmethod
    def back(cls, live: str, copy: str, at: datetime) -> Names:
        """Swap a kept copy back in; the live database becomes a kept copy in turn."""
        if not copy.startswith(live + BEFORE):
            raise OpsError(f"{copy} is not a copy a restore kept of {live}",
                           hint=f"kept copies are named {live}{BEFORE}<time>")
        return cls(live, copy, kept_name(live, at))

    def variables(self) -> dict[str, str]:
        return {"live": self.live, "incoming": self.incoming, "kept": self.kept}


def kept_name(live: str, at: datetime) -> str:
    """`<db>_before_<UTC time>`, lower case (an identifier that needs no quoting)."""
    name = f"{live}{BEFORE}{at:%Y%m%dt%H%M%Sz}"
    if len(name) > MAX_NAME:
        raise OpsError(f"database.name {live!r} is too long to keep a copy beside it "
                       f"({name} has more than {MAX_NAME} characters)")
    return name


def is_copy(name: str) -> bool:
    """A name restore-db takes for a kept database copy: snapshot ids cannot hold `_`."""
    return BEFORE in name


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def retarget(sql: str, database: str) -> str:
    """pg_restore's database-level statements aimed at `database` instead of the dumped one:
    the database's identifier in each rewritten; its `\\connect` lines, and the CREATE and
    OWNER TO that `pg_restore --create` always adds, dropped (the database exists, and keeps
    the live one's owner)."""
    kept = "\n".join(line for line in sql.splitlines() if not _SKIPPED.match(line))
    return _STATEMENT.sub(lambda m: m.group(1) + quote(database), kept) + "\n"

