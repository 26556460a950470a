"""restore-db against the lab's RDS-like PostgreSQL (as its non-superuser master) and a bare
host: a database holding every kind of object pg_dump archives round-trips identically, the
previous database is kept and swaps back, and a restore killed at its start, in its middle, at
its end, or cut off from the host, leaves the data as it was or a documented way back.

The tests use a database of their own (rs_open_lmis); a kill is a real SIGKILL of a real
`inv restore-db`, at a point the test sees on the server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from ops import config
from ops.config import ROOT, Environment
from ops.db import backup, dumps, remote
from ops.db.manifest import Manifest
from ops.db.restore import restore_db
from ops.errors import OpsError
from ops.lab.lab import Lab
from tests.lab.target import ctrl_c_reaches_it, database_config

DB = "rs_open_lmis"
ROLE = "rs_reporting"

# Every kind of object pg_dump archives that RDS's master may create, OpenLMIS-shaped.
SEED = f"""
CREATE EXTENSION "uuid-ossp"; CREATE EXTENSION postgis; CREATE EXTENSION btree_gist;
COMMENT ON EXTENSION btree_gist IS 'exclusion constraints on periods';
ALTER DATABASE {DB} SET work_mem = '8MB';
ALTER DATABASE {DB} SET search_path = "$user", public, referencedata;
ALTER ROLE {ROLE} IN DATABASE {DB} SET statement_timeout = '5min';
COMMENT ON DATABASE {DB} IS 'OpenLMIS — base de données';
GRANT CONNECT ON DATABASE {DB} TO {ROLE};
CREATE SCHEMA referencedata; CREATE SCHEMA requisition;
CREATE SCHEMA reporting AUTHORIZATION {ROLE};
CREATE TYPE requisition.status AS ENUM ('INITIATED', 'APPROVED', 'RELEASED');
CREATE DOMAIN referencedata.code AS text CHECK (VALUE ~ '^[A-Z][0-9]+$');
CREATE TYPE referencedata.quantity AS (amount numeric(12, 2), unit text);
CREATE TYPE referencedata.span AS RANGE (subtype = date);
CREATE COLLATION referencedata.fr (provider = libc, locale = 'C.UTF-8');
CREATE TEXT SEARCH CONFIGURATION referencedata.names (COPY = pg_catalog.simple);
CREATE SEQUENCE referencedata.batch_numbers START 1000 INCREMENT 7;
SELECT setval('referencedata.batch_numbers', 4242);
CREATE TABLE referencedata.facilities (
  id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), code referencedata.code UNIQUE NOT NULL,
  name text COLLATE referencedata.fr NOT NULL, location geometry(Point, 4326), logo bytea,
  opened referencedata.span, extra jsonb, tags text[]);
COMMENT ON TABLE referencedata.facilities IS 'health facilities';
COMMENT ON COLUMN referencedata.facilities.code IS 'unique code';
CREATE INDEX facilities_location ON referencedata.facilities USING gist (location);
CREATE INDEX facilities_lower_name ON referencedata.facilities (lower(name))
  WHERE location IS NOT NULL;
CREATE TABLE referencedata.orderables (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, code text UNIQUE NOT NULL,
  packsize referencedata.quantity, valid referencedata.span,
  EXCLUDE USING gist (code WITH =, valid WITH &&));
CREATE TABLE requisition.requisitions (
  id bigserial, facilityid uuid NOT NULL REFERENCES referencedata.facilities,
  status requisition.status NOT NULL, createddate date NOT NULL, remarks text,
  PRIMARY KEY (id, createddate)) PARTITION BY RANGE (createddate);
CREATE TABLE requisition.requisitions_2025 PARTITION OF requisition.requisitions
  FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE requisition.requisitions_2026 PARTITION OF requisition.requisitions
  FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE UNLOGGED TABLE requisition.drafts (id int PRIMARY KEY, body text);
CREATE TABLE requisition.audit (at timestamptz DEFAULT now(), what text);
CREATE FUNCTION requisition.audited() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO requisition.audit (what) VALUES (TG_OP || ' ' || NEW.status); RETURN NEW; END $$;
CREATE TRIGGER requisitions_audit AFTER INSERT ON requisition.requisitions_2025
  FOR EACH ROW EXECUTE FUNCTION requisition.audited();
ALTER TABLE requisition.requisitions_2025 DISABLE TRIGGER requisitions_audit;
CREATE FUNCTION requisition.total(bigint) RETURNS bigint LANGUAGE sql STABLE
  AS 'SELECT count(*) FROM requisition.requisitions WHERE id <= $1';
CREATE PROCEDURE requisition.approve(bigint) LANGUAGE sql
  AS $$UPDATE requisition.requisitions SET status = 'APPROVED' WHERE id = $1$$;
CREATE FUNCTION requisition.longer(text, text) RETURNS text LANGUAGE sql IMMUTABLE
  AS $$SELECT CASE WHEN length($2) > length(coalesce($1, '')) THEN $2 ELSE $1 END$$;
CREATE AGGREGATE requisition.longest(text) (SFUNC = requisition.longer, STYPE = text);
CREATE VIEW requisition.open AS SELECT * FROM requisition.requisitions WHERE status <> 'RELEASED';
CREATE RULE no_delete AS ON DELETE TO requisition.open DO INSTEAD NOTHING;
CREATE MATERIALIZED VIEW requisition.per_facility AS
  SELECT facilityid, count(*) AS n FROM requisition.requisitions GROUP BY facilityid;
CREATE STATISTICS requisition.facility_status ON facilityid, status
  FROM requisition.requisitions_2025;
ALTER TABLE requisition.audit ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON requisition.audit USING (what IS NOT NULL);
CREATE PUBLICATION rs_changes FOR TABLE requisition.audit;
CREATE TABLE reporting.snapshots (taken date PRIMARY KEY, rows bigint);
ALTER TABLE reporting.snapshots OWNER TO {ROLE};
GRANT USAGE ON SCHEMA referencedata TO {ROLE};
GRANT SELECT (id, code) ON referencedata.facilities TO {ROLE};
ALTER DEFAULT PRIVILEGES IN SCHEMA requisition GRANT SELECT ON TABLES TO {ROLE};
INSERT INTO referencedata.facilities (code, name, location, logo, opened, extra, tags)
  SELECT 'F' || g, 'Centre de santé n°' || g || ' — Ñandú 診療所',
         ST_SetSRID(ST_MakePoint(30 + g / 1000.0, -2 - g / 1000.0), 4326),
         decode(md5(g::text), 'hex'), referencedata.span('2020-01-01', NULL),
         jsonb_build_object('beds', g % 40, 'power', g % 3 = 0), ARRAY['district ' || g % 30]
  FROM generate_series(1, 2000) g;
INSERT INTO referencedata.orderables (code, packsize, valid)
  SELECT 'P' || g, ROW(g % 100 + 0.5, 'tablet')::referencedata.quantity,
         referencedata.span('2024-01-01', '2030-01-01')
  FROM generate_series(1, 3000) g;
INSERT INTO requisition.requisitions (facilityid, status, createddate, remarks)
  SELECT f.id, (ARRAY['INITIATED', 'APPROVED', 'RELEASED'])[g % 3 + 1]::requisition.status,
         '2025-01-01'::date + g % 700, CASE WHEN g % 5 = 0 THEN 'ok ✓' END
  FROM generate_series(1, 300000) g
  JOIN (SELECT id, row_number() OVER (ORDER BY code) AS n FROM referencedata.facilities) f
    ON f.n = g % 2000 + 1;
INSERT INTO requisition.drafts SELECT g, repeat('draft ', g % 10) FROM generate_series(1, 500) g;
INSERT INTO reporting.snapshots VALUES ('2026-11-01', 300000);
REFRESH MATERIALIZED VIEW requisition.per_facility;
SELECT lo_from_bytea(424242, convert_to('scan of a signed proof of delivery', 'UTF8'));
COMMENT ON LARGE OBJECT 424242 IS 'proof of delivery';
SELECT lo_from_bytea(434343, decode(repeat('00ff', 50000), 'hex'));
ALTER LARGE OBJECT 434343 OWNER TO {ROLE};
"""

# What goes wrong after the backup: data, objects, settings, large objects.
DAMAGE = f"""
UPDATE referencedata.facilities SET name = 'renamed' WHERE code LIKE 'F1%';
DELETE FROM requisition.requisitions WHERE id % 7 = 0;
CREATE TABLE IF NOT EXISTS public.added_after_backup (x int);
DROP VIEW IF EXISTS requisition.open;
ALTER DATABASE {DB} SET work_mem = '64MB';
COMMENT ON DATABASE {DB} IS 'changed';
SELECT lo_put(424242, 0, decode('00ff', 'hex'));
SELECT lo_from_bytea(0, 'added after the backup');
SELECT setval('referencedata.batch_numbers', 9999);
"""

# Per-table content (every row's text, ordered), sequences, large objects with their owners
# and comments, and the database's own settings, comment, privileges and owner.
CONTENT_SQL = r"""
SELECT 'large objects', string_agg(m.oid || '=' || md5(lo_get(m.oid)) || '/' ||
       pg_get_userbyid(m.lomowner) || '/' || coalesce(obj_description(m.oid, 'pg_largeobject'), ''),
       ' ' ORDER BY m.oid) FROM pg_largeobject_metadata m
UNION ALL SELECT 'sequences', string_agg(format('%I.%I', schemaname, sequencename) || '=' ||
       coalesce(last_value::text, ''), ' ' ORDER BY 1) FROM pg_sequences
UNION ALL SELECT 'database settings', string_agg(coalesce(r.rolname, '*') || ':' ||
       array_to_string(s.setconfig, ','), ' ' ORDER BY 1)
  FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
  LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE d.datname = current_database()
UNION ALL SELECT 'database', pg_get_userbyid(datdba) || ' ' || datacl::text || ' ' ||
       coalesce(shobj_description(oid, 'pg_database'), '')
  FROM pg_database WHERE datname = current_database()
"""


def fingerprint(lab: Lab, host: remote.DbHost) -> dict[str, str]:
    """The database as a dict: its whole schema as pg_dump prints it (owners, privileges,
    comments, every object), every table's content, and CONTENT_SQL's lines."""
    _, schema = host.run(f"pg_dump -s -d {DB} | grep -vE '^\\\\(un)?restrict '",
                         what="dumping the schema")
    found = {"schema": schema}
    with lab.db_connection(DB) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'm') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND c.relname <> 'spatial_ref_sys' ORDER BY 1")]
        for table in tables:
            found[table] = conn.execute(
                f"SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' "
                f"ORDER BY x::text)), '') FROM {table} x").fetchone()[0]
        found.update({name: value or "" for name, value in conn.execute(CONTENT_SQL)})
    return found


def databases(lab: Lab) -> set[str]:
    with lab.db_connection("postgres") as conn:
        return {r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'rs\\_%'")}


@pytest.fixture(scope="module")
def env(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    host = lab.host("bk1", docker_ready=True)
    directory = tmp_path_factory.mktemp("rsconfig")
    (directory / "rstest.yml").write_text(database_config(host, DB))
    with lab.db_connection("postgres") as conn:
        for name in databases(lab):
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
        conn.execute(f"DROP ROLE IF EXISTS {ROLE}")
        conn.execute(f"CREATE ROLE {ROLE}")
        conn.execute(f"GRANT {ROLE} TO postgres")  # the master may act as the roles it made
        conn.execute(f"CREATE DATABASE {DB}")
    with lab.db_connection(DB) as conn:
        conn.execute(SEED)
    os.environ["OPS_CONFIG_DIR"] = str(directory)
    yield config.load("rstest")
    del os.environ["OPS_CONFIG_DIR"]
    with lab.db_connection("postgres") as conn:
        for name in databases(lab):
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
        conn.execute(f"DROP ROLE {ROLE}")


@pytest.fixture(scope="module")
def host(env: Environment) -> Iterator[remote.DbHost]:
    with remote.session(env) as found:
        yield found


@pytest.fixture(scope="module")
def dump(env: Environment, lab: Lab, host: remote.DbHost) -> tuple[Manifest, dict[str, str]]:
    """A dump of the seeded database, and its fingerprint."""
    seeded = fingerprint(lab, host)
    taken = backup.backup_db(env, method="dump", reason="seeded")
    return dumps.manifest(env, taken[0]), seeded


def damage(lab: Lab, host: remote.DbHost) -> dict[str, str]:
    with lab.db_connection(DB) as conn:
        conn.execute(DAMAGE)
    return fingerprint(lab, host)


def kept_copies(lab: Lab) -> list[str]:
    return sorted(n for n in databases(lab) if n.startswith(f"{DB}_before_"))


def drop_kept(lab: Lab) -> None:
    with lab.db_connection("postgres") as conn:
        for name in kept_copies(lab):
            conn.execute(f"DROP DATABASE {name}")


def test_every_kind_of_object_round_trips_and_the_previous_database_swaps_back(
        env: Environment, lab: Lab, host: remote.DbHost,
        dump: tuple[Manifest, dict[str, str]]) -> None:
    manifest, seeded = dump
    with lab.db_connection(DB) as conn:
        assert not conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                                ).fetchone()[0]  # all of it as RDS's kind of master
    damaged = damage(lab, host)
    assert damaged != seeded

    restore_db(env, manifest.id, force=False)
    assert fingerprint(lab, host) == seeded
    [kept] = kept_copies(lab)
    assert f"{DB}_incoming" not in databases(lab)

    restore_db(env, kept, force=False)  # going back is a rename
    assert fingerprint(lab, host) == damaged
    [restored] = [n for n in kept_copies(lab) if n != kept]
    restore_db(env, restored, force=False)
    assert fingerprint(lab, host) == seeded
    drop_kept(lab)


def test_a_dump_owned_by_a_role_the_master_cannot_act_as_is_refused_before_anything(
        env: Environment, lab: Lab, host: remote.DbHost,
        dump: tuple[Manifest, dict[str, str]]) -> None:
    before = fingerprint(lab, host)
    with lab.db_connection("postgres") as conn:
        conn.execute(f"REVOKE {ROLE} FROM postgres")
    try:
        with pytest.raises(OpsError, match=f"owned by {ROLE}, which postgres cannot act as"):
            restore_db(env, dump[0].id, force=False)
    finally:
        with lab.db_connection("postgres") as conn:
            conn.execute(f"GRANT {ROLE} TO postgres")
    assert fingerprint(lab, host) == before and not kept_copies(lab)


def test_a_restore_the_servers_storage_cannot_hold_beside_the_live_one_is_refused(
        env: Environment, lab: Lab, host: remote.DbHost,
        dump: tuple[Manifest, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Failure injection: the lab's disk cannot be filled for the test."""
    before = fingerprint(lab, host)
    monkeypatch.setattr(Lab, "database_free_bytes", lambda self: 100 << 20)
    with pytest.raises(OpsError, match=r"has 100\.0 MiB of storage free") as caught:
        restore_db(env, dump[0].id, force=False)
    assert "nothing was changed" in caught.value.hint
    assert fingerprint(lab, host) == before and not restoring(lab) and not kept_copies(lab)


def inv_restore(backup_id: str, *extra: str) -> subprocess.Popen[str]:
    """`inv restore-db` as an operator runs it, in a process of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "invoke", "restore-db", "--env", "rstest", "--from", backup_id,
         "--yes", *extra], cwd=ROOT, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=ctrl_c_reaches_it)



def when(seen: Callable[[], bool], process: subprocess.Popen[str], what: str) -> None:
    """Wait until `seen()`, checking every 50 ms; fail when the process ends first."""
    deadline = time.monotonic() + 120
    while not seen():
        if process.poll() is not None:
            pytest.fail(f"restore-db ended before {what}: {process.stdout.read()}")
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.05)


def restoring(lab: Lab) -> bool:
    return f"{DB}_incoming" in databases(lab)


def pg_restore_runs(host: remote.DbHost) -> bool:
    return host.run("pgrep -x pg_restore", what="looking for pg_restore", warn=True)[0] == 0


def cut_pg_restores_connection(host: remote.DbHost) -> bool:
    """Kill the SSH session (sshd-session) the newest pg_restore descends from; False when no
    pg_restore runs (or an earlier test's, orphaned, is the newest)."""
    return host.run("pid=$(pgrep -xn pg_restore) || exit 3; "
                    "until ps -o comm= -p $pid | grep -q '^sshd'; do "
                    "pid=$(ps -o ppid= -p $pid | tr -d ' '); [ \"$pid\" -gt 1 ] || exit 1; "
                    "done; kill -9 $pid", what="cutting pg_restore's connection", root=True,
                    warn=True)[0] == 0


def swap_waits(lab: Lab) -> bool:
    with lab.db_connection("postgres") as conn:
        return bool(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type "
                                 "= 'Lock' AND query LIKE '%RENAME%'").fetchone()[0])


@pytest.mark.parametrize("point", ["start", "middle", "end"])
def test_a_restore_killed_leaves_the_data_or_a_documented_way_back(
        env: Environment, lab: Lab, host: remote.DbHost, dump: tuple[Manifest, dict[str, str]],
        point: str) -> None:
    before = damage(lab, host)
    process = inv_restore(dump[0].id)
    with lab.db_connection("postgres") as holder:
        if point == "start":
            when(lambda: restoring(lab), process, "the incoming database")
        elif point == "middle":
            when(lambda: restoring(lab) and pg_restore_runs(host), process, "pg_restore")
        else:  # the test holds the live database's row: the swap waits inside its transaction
            holder.execute("BEGIN")
            holder.execute(f"ALTER DATABASE {DB} CONNECTION LIMIT -1")
            when(lambda: swap_waits(lab), process, "the swap")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if point == "end":
            holder.execute("ROLLBACK")
    time.sleep(1)  # what the host still had running ends

    swapped = bool(kept_copies(lab))
    assert fingerprint(lab, host) == (dump[1] if swapped else before)  # one or the other
    assert not swapped or point == "end"  # only the swap itself may have gone through
    # the documented ways back (runbook 08), after the killed restore's stale deploy lock:
    # swap the kept copy in again, or run the restore again
    again = inv_restore(kept_copies(lab)[0] if swapped else dump[0].id, "--break-lock")
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out
    assert "breaking the stale deploy lock" in out
    assert fingerprint(lab, host) == (before if swapped else dump[1])
    assert not restoring(lab)
    # what the killed run fetched went with its session's directory: only this test's is left
    assert host.run(f"ls {remote.WORK_ROOT}", what="listing")[1].split() == [
        host.work.rpartition("/")[2]]
    drop_kept(lab)


def test_a_restore_cut_off_from_the_host_leaves_the_data_as_it_was(
        env: Environment, lab: Lab, host: remote.DbHost,
        dump: tuple[Manifest, dict[str, str]]) -> None:
    before = damage(lab, host)
    process = inv_restore(dump[0].id)
    # the SSH session pg_restore runs under dies, as when the network drops
    when(lambda: restoring(lab) and cut_pg_restores_connection(host), process, "pg_restore")
    out, _ = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "Traceback" not in out, out
    assert fingerprint(lab, host) == before
    assert not kept_copies(lab)
    again = inv_restore(dump[0].id, "--break-lock")
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out
    assert fingerprint(lab, host) == dump[1]
    drop_kept(lab)


def test_a_restore_ctrl_c_before_the_swap_drops_its_copy(
        env: Environment, lab: Lab, host: remote.DbHost,
        dump: tuple[Manifest, dict[str, str]]) -> None:
    before = damage(lab, host)
    process = inv_restore(dump[0].id)
    when(lambda: restoring(lab) and pg_restore_runs(host), process, "pg_restore")
    os.kill(process.pid, signal.SIGINT)
    out, _ = process.communicate(timeout=120)
    assert process.returncode != 0 and "Traceback" not in out, out
    assert f"{DB} and the stack were not touched" in out
    assert fingerprint(lab, host) == before and not restoring(lab)
