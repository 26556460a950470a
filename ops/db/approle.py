"""The stack's own database role: it owns the OpenLMIS database and schemas; the master
user stays the toolkit's (backups, restores, extensions).

As on RDS, the master is not a superuser: it creates the role (CREATEROLE), becomes a member
of it (so that pg_dump reads, and pg_restore gives ownership to, what the stack owns), and
hands it the database. A database the stack used as the master before is handed over too:
its schemas and what is in them. The password travels only as a SCRAM-SHA-256 verifier
computed here, inside the SQL on psql's standard input: never in a command line, and not
even the server sees it in clear. Planning is pure; deploy runs the SQL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

from ops.errors import OpsError
from ops.plan import Action, Change

ITERATIONS = 4096  # PostgreSQL's scram_iterations default

# What the plan needs, in one psql call (variables: role): whether the role exists, whether
# the connected user can SET ROLE to it (from PostgreSQL 16 an ADMIN OPTION alone is
# membership without SET), the database's owner, and the schemas (outside the extensions')
# the connected user still owns.
FACTS_SQL = r"""
SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role'),
  EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = :'role'
          AND pg_has_role(current_user, r.oid, CASE WHEN
            current_setting('server_version_num')::int >= 160000 THEN 'SET' ELSE 'MEMBER' END)),
  (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()),
  (SELECT coalesce(string_agg(n.nspname, ' ' ORDER BY n.nspname), '') FROM pg_namespace n
   WHERE n.nspowner = current_user::regrole AND n.nspname NOT IN ('public', 'information_schema')
     AND n.nspname NOT LIKE 'pg\_%'
     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass
                     AND d.objid = n.oid AND d.deptype = 'e'))
"""

# Every schema the connected user owns (outside the extensions') and every object in it that
# it owns, given to the role in the psql variable `role` (read through a setting: a DO block
# sees no psql variables). What follows another object's owner is left to it: sequences owned
# by a column, a table's row type, array and multirange types, a range's constructors.
HANDOVER_SQL = r"""
SELECT set_config('ops.app_role', :'role', false) AS ignored \gset
DO $$
DECLARE r record; statement text; role text := current_setting('ops.app_role');
BEGIN
  FOR r IN
    SELECT n.oid AS ns, n.nspname FROM pg_namespace n
    WHERE n.nspowner = current_user::regrole AND n.nspname NOT IN ('public', 'information_schema')
      AND n.nspname NOT LIKE 'pg\_%'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass
                      AND d.objid = n.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER SCHEMA %I OWNER TO %I', r.nspname, role);
    FOR statement IN
      SELECT format('ALTER %s %s OWNER TO %I', CASE c.relkind WHEN 'S' THEN 'SEQUENCE'
               WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
               WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, c.oid::regclass, role)
      FROM pg_class c WHERE c.relnamespace = r.ns AND c.relowner = current_user::regrole
        AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                        AND d.objid = c.oid AND d.deptype IN ('a', 'i', 'e'))
      UNION ALL
      SELECT format('ALTER %s %s OWNER TO %I', CASE p.prokind WHEN 'p' THEN 'PROCEDURE'
               WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, p.oid::regprocedure, role)
      FROM pg_proc p WHERE p.pronamespace = r.ns AND p.proowner = current_user::regrole
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                        AND d.objid = p.oid AND d.deptype IN ('i', 'e'))
      UNION ALL
      SELECT format('ALTER %s %s OWNER TO %I', CASE t.typtype WHEN 'd' THEN 'DOMAIN'
               ELSE 'TYPE' END, t.oid::regtype, role)
      FROM pg_type t WHERE t.typnamespace = r.ns AND t.typowner = current_user::regrole
        AND t.typtype IN ('c', 'd', 'e', 'r') AND t.typelem = 0
        AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                        AND d.objid = t.oid AND d.deptype IN ('i', 'e'))
    LOOP
      EXECUTE statement;
    END LOOP;
  END LOOP;
END $$;
"""


@dataclass(frozen=True)
class Facts:
    exists: bool
    member: bool  # the master can SET ROLE to it
    db_owner: str
    master_schemas: tuple[str, ...]  # schemas the master still owns
    password_ok: bool  # the role logs in with the configured password


@dataclass(frozen=True)
class Setup:
    """What the role needs; the verifier is computed when applied, never kept in a plan."""

    role: str
    create: bool
    set_password: bool
    grant: bool
    own_database: bool
    handover: tuple[str, ...]


def parse_facts(line: str, password_ok: bool) -> Facts:
    """FACTS_SQL's `psql -At` line, read."""
    exists, member, owner, schemas = line.strip().split("|")
    return Facts(exists == "t", member == "t", owner, tuple(schemas.split()), password_ok)


def plan(database: str, role: str, master: str, facts: Facts | None) -> list[Change[Setup]]:
    """The change that makes `role` the stack's: created, its password the configured one,
    the master a member of it, owner of `database` and of the master's schemas. `facts` None:
    not known yet (no PostgreSQL client on the host to ask with), so all of it, if needed."""
    if facts is None:
        return [Change(Action.CREATE, f"database role {role}",
                       f"if missing: owner of {database}, the stack connects as it",
                       payload=Setup(role, True, True, True, True, ()))]
    setup = Setup(role, create=not facts.exists,
                  set_password=not facts.exists or not facts.password_ok,
                  grant=not facts.member, own_database=facts.db_owner != role,
                  handover=facts.master_schemas)
    done = []
    if setup.create:
        done.append("created")
    elif setup.set_password:
        done.append("password set to database.app_password")
    if setup.grant:
        done.append(f"{master} made a member")
    if setup.own_database:
        done.append(f"owner of {database} (now {facts.db_owner})")
    if setup.handover:
        done.append(f"owner of the schemas {', '.join(setup.handover)} (now {master}'s)")
    if not done:
        return []
    action = Action.CREATE if setup.create else Action.UPDATE
    return [Change(action, f"database role {role}", "; ".join(done), payload=setup)]


def setup_sql(setup: Setup, password: str) -> str:
    """The statements for `setup`, with the password as a SCRAM verifier (psql variables:
    role, database)."""
    verifier = literal(scram_verifier(password))
    statements = []
    if setup.create:
        statements.append(f"""SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role')
  AS missing \\gset
\\if :missing
CREATE ROLE :"role" LOGIN PASSWORD {verifier};
\\endif""")
    if setup.set_password or setup.create:
        statements.append(f'ALTER ROLE :"role" LOGIN PASSWORD {verifier};')
    if setup.grant or setup.create:
        statements.append('GRANT :"role" TO CURRENT_USER;')
    if setup.own_database or setup.create:
        statements.append('ALTER DATABASE :"database" OWNER TO :"role";')
    if setup.handover or setup.create:
        statements.append(HANDOVER_SQL.strip())
    return "\n".join(statements) + "\n"


def scram_verifier(password: str, salt: bytes | None = None,
                   iterations: int = ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802, 7677)."""
    check_password(password)
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return (f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}")


def check_password(password: str) -> None:
    """Printable ASCII only: PostgreSQL normalizes other passwords (SASLprep) before hashing,
    which this verifier does not."""
    if not password.isascii() or not password.isprintable():
        raise OpsError("database.app_password must be printable ASCII",
                       hint="generate one of letters, digits and punctuation")


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
