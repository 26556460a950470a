"""backup-db / verify-backup, and what restore-db refuses, against the lab's real PostgreSQL
and a lab host with Docker (as deploy leaves it: verify-backup's scratch server runs there);
restores that go through: test_restore.py.

The tests use a database of their own (bk_open_lmis) on the lab server, apart from what other
lab tests keep in open_lmis.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from ops import config, provider
from ops.aws.session import client
from ops.config import Environment
from ops.db import backup, catalog, drill, dumps, remote, transfer
from ops.db import verify as verifying
from ops.db.manifest import Manifest
from ops.db.restore import ChecksumError, restore_db
from ops.db.verify import verify
from ops.errors import OpsError
from ops.host.session import open_host
from ops.lab.lab import Lab
from tests.lab.target import database_config

DB = "bk_open_lmis"

SEED = """
CREATE SCHEMA referencedata;
CREATE SCHEMA requisition;
CREATE SCHEMA fulfillment;
CREATE TABLE referencedata.facilities (
  id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), code text UNIQUE NOT NULL, name text NOT NULL,
  location geometry(Point, 4326), logo bytea);
CREATE TABLE referencedata.orderables (
  id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), code text UNIQUE NOT NULL,
  fullproductname text NOT NULL, netcontent bigint NOT NULL);
CREATE TABLE requisition.requisitions (
  id bigserial PRIMARY KEY, facilityid uuid NOT NULL REFERENCES referencedata.facilities,
  status text NOT NULL, createddate timestamptz NOT NULL, draftstatusmessage text);
CREATE TABLE requisition.requisition_line_items (
  id bigserial PRIMARY KEY,
  requisitionid bigint NOT NULL REFERENCES requisition.requisitions ON DELETE CASCADE,
  orderableid uuid NOT NULL REFERENCES referencedata.orderables,
  requestedquantity integer, remarks text);
CREATE INDEX ON requisition.requisition_line_items (requisitionid);
CREATE TABLE fulfillment.proofs_of_delivery (
  id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  requisitionid bigint REFERENCES requisition.requisitions, signature bytea, receivedby text);
CREATE VIEW requisition.totals AS
  SELECT requisitionid, sum(requestedquantity) AS total
  FROM requisition.requisition_line_items GROUP BY requisitionid;
INSERT INTO referencedata.facilities (code, name, location, logo)
  SELECT 'F' || g, 'Centre de santé n°' || g || ' — Ñandú 診療所',
         ST_SetSRID(ST_MakePoint(30 + g / 1000.0, -2 - g / 1000.0), 4326),
         decode(md5(g::text) || md5((g * 7)::text), 'hex')
  FROM generate_series(1, 2000) g;
INSERT INTO referencedata.orderables (code, fullproductname, netcontent)
  SELECT 'P' || g, 'Paracétamol 500 mg — ' || g, g % 100 + 1 FROM generate_series(1, 3000) g;
INSERT INTO requisition.requisitions (facilityid, status, createddate, draftstatusmessage)
  SELECT f.id, (ARRAY['INITIATED', 'APPROVED', 'RELEASED'])[g % 3 + 1],
         '2025-01-01'::timestamptz + g * interval '1 minute', CASE WHEN g % 5 = 0 THEN 'ok ✓' END
  FROM generate_series(1, 40000) g
  JOIN (SELECT id, row_number() OVER (ORDER BY code) AS n FROM referencedata.facilities) f
    ON f.n = g % 2000 + 1;
INSERT INTO requisition.requisition_line_items (requisitionid, orderableid, requestedquantity,
                                                remarks)
  SELECT r.id, o.id, (r.id * k) % 500, CASE WHEN k = 1 THEN 'première ligne' END
  FROM requisition.requisitions r
  CROSS JOIN generate_series(1, 6) k
  JOIN (SELECT id, row_number() OVER (ORDER BY code) AS n FROM referencedata.orderables) o
    ON o.n = (r.id * 13 + k) % 3000 + 1;
INSERT INTO fulfillment.proofs_of_delivery (requisitionid, signature, receivedby)
  SELECT id, decode(repeat(md5(id::text), 4), 'hex'), 'Reçu par Zoë ' || id
  FROM requisition.requisitions WHERE id % 2 = 0;
SELECT lo_from_bytea(424242, convert_to('scan of a signed proof of delivery', 'UTF8'));
"""

def _connect(lab: Lab, dbname: str = DB) -> psycopg.Connection:
    return lab.db_connection(dbname)


def checksums(lab: Lab) -> dict[str, str]:
    """Per-table md5 of every row's text, ordered, and of every large object: equal contents,
    equal checksums."""
    with _connect(lab) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
            "WHERE schemaname IN ('referencedata', 'requisition', 'fulfillment', 'public') "
            "AND tablename <> 'spatial_ref_sys' ORDER BY 1")]
        found = {t: conn.execute(f"SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, "
                                 f"'|' ORDER BY x::text)), '') FROM {t} x").fetchone()[0]
                 for t in tables}
        found["large objects"] = conn.execute(
            "SELECT string_agg(oid || '=' || md5(lo_get(oid)), ' ' ORDER BY oid) "
            "FROM pg_largeobject_metadata").fetchone()[0]
        return found


@pytest.fixture(scope="module")
def env(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    host = lab.host("bk1", docker_ready=True)
    path = Path(tmp_path_factory.mktemp("bkconfig")) / "bktest.yml"
    path.write_text(database_config(host, DB))
    with _connect(lab, "postgres") as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.execute(f"CREATE DATABASE {DB}")
    with _connect(lab) as conn:
        conn.execute('CREATE EXTENSION "uuid-ossp"; CREATE EXTENSION postgis')
        conn.execute(SEED)
    yield config.load(path=path)
    with _connect(lab, "postgres") as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")


@pytest.fixture(scope="module")
def first(env: Environment) -> Manifest:
    """The first backup of the seeded database."""
    taken = backup.backup_db(env, method="both", reason="before the test changes")
    return dumps.manifest(env, taken[0])


def test_dump_manifest_describes_the_database(env: Environment, first: Manifest,
                                              lab: Lab) -> None:
    assert first.tables["requisition.requisitions"] == 40000
    assert first.tables["requisition.requisition_line_items"] == 240000
    assert "public.spatial_ref_sys" not in first.tables
    assert sum(first.tables.values()) > 280000
    assert first.server_version.startswith("17")
    assert first.release == "none" and first.reason == "before the test changes"
    assert "toc.dat" in first.files
    assert all(len(f.sha256) == 64 for f in first.files.values())
    assert first.archive_size < first.database_size / 3
    listed = catalog.backups(env)
    assert listed[0].id == first.id and listed[0].state == "unverified"
    assert client(env, "cloudwatch").list_metrics(  # what the backup-age alarm watches
        Namespace="OpenLMIS", MetricName="BackupSucceeded",
        Dimensions=[{"Name": "Environment", "Value": env.name}])["Metrics"]


def database_names(lab: Lab) -> set[str]:
    with _connect(lab, "postgres") as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


@contextmanager
def databases_seen(lab: Lab) -> Iterator[set[str]]:
    """Every database name the lab PostgreSQL has while the block runs (polled)."""
    seen: set[str] = set()
    done = threading.Event()

    def poll() -> None:
        with _connect(lab, "postgres") as conn:
            while not done.is_set():
                seen.update(r[0] for r in conn.execute("SELECT datname FROM pg_database"))
                done.wait(0.1)

    watcher = threading.Thread(target=poll)
    watcher.start()
    try:
        yield seen
    finally:
        done.set()
        watcher.join()


def drill_leftovers(env: Environment) -> str:
    """Drill containers, dangling volumes and fetched dumps on the host; '' when none."""
    with open_host(env) as host:
        return host.run(f"docker ps -aq --filter label={drill.LABEL}; "
                        "docker volume ls -q --filter dangling=true; "
                        f"ls {remote.WORK_ROOT}").strip()


def test_verify_backup_drills_in_a_scratch_container_and_records(
        env: Environment, first: Manifest, lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    looked: list[str] = []
    real_load = verifying.load

    def load_and_look(host: remote.DbHost, *args: object) -> None:
        """The real restore, then a look at the scratch container while it runs."""
        real_load(host, *args)
        looked.append(host.remote.run(
            f"docker inspect -f '{{{{.HostConfig.Memory}}}} {{{{range .Config.Env}}}}"
            f"{{{{.}}}} {{{{end}}}}{{{{json .NetworkSettings.Ports}}}}' {drill.NAME}; "
            "ps -eo args"))

    monkeypatch.setattr(verifying, "load", load_and_look)
    before = database_names(lab)
    with databases_seen(lab) as seen:
        result = verify(env, catalog.find(env, first.id))
    assert result.ok, result.detail
    memory, *words = looked[0].split()
    password = next(w for w in words if w.startswith("POSTGRES_PASSWORD=")).partition("=")[2]
    assert int(memory) > 0 and len(password) >= 24
    assert '"HostIp":"127.0.0.1"' in looked[0] and '"HostIp":"0.0.0.0"' not in looked[0]
    assert password not in looked[0].partition("\n")[2]  # in no process's argv
    assert "scratch PostgreSQL 17" in result.detail
    assert catalog.find(env, first.id).verified
    assert seen == before  # the production server never had a scratch database
    assert drill_leftovers(env) == ""


def test_the_next_drill_removes_a_killed_drills_leftover(env: Environment,
                                                         first: Manifest) -> None:
    with open_host(env) as host:
        image = provider.of(env).drill_image(env, host, 17)
        host.run(f"docker create --name {drill.NAME} --label {drill.LABEL}=1 "
                 f"--mount type=volume,dst={drill.VOLUME} {image}")
    assert drill_leftovers(env) != ""
    assert verify(env, catalog.find(env, first.id)).ok
    assert drill_leftovers(env) == ""


def test_an_interrupted_drill_leaves_nothing(env: Environment, first: Manifest,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Failure injection: Ctrl-C arrives as the restore starts."""
    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(verifying, "load", interrupted)
    state = catalog.find(env, first.id).state
    with pytest.raises(KeyboardInterrupt):
        verify(env, catalog.find(env, first.id))
    assert drill_leftovers(env) == ""
    assert catalog.find(env, first.id).state == state


def test_a_drill_without_room_is_refused_and_changes_nothing(
        env: Environment, first: Manifest, lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """Failure injection: the lab's disk cannot be filled safely, so the drill is told it
    needs a petabyte more."""
    monkeypatch.setattr(drill, "MARGIN", 1 << 50)
    state, before = catalog.find(env, first.id).state, database_names(lab)
    with databases_seen(lab) as seen, pytest.raises(OpsError) as caught:
        verify(env, catalog.find(env, first.id))
    assert "not enough disk" in caught.value.message and "free, the drill needs" in \
        caught.value.message
    assert "nothing was changed" in caught.value.hint
    assert seen == before
    assert drill_leftovers(env) == ""
    assert catalog.find(env, first.id).state == state


def _damaged_copy(env: Environment, manifest: Manifest, how: str) -> str:
    """A copy of a dump under a new id with one data file truncated or altered, or claiming to
    come from a newer PostgreSQL."""
    s3 = client(env, "s3")
    copy_id = f"{manifest.id}-{how}"
    victim = max((n for n in manifest.files if n != "toc.dat"),
                 key=lambda n: manifest.files[n].size)
    for name in manifest.files:
        data = s3.get_object(Bucket=env.bucket,
                             Key=f"dumps/{manifest.id}/data/{name}")["Body"].read()
        if name == victim and how == "truncated":
            data = data[: len(data) // 2]
        elif name == victim and how == "corrupted":
            data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
        s3.put_object(Bucket=env.bucket, Key=f"dumps/{copy_id}/data/{name}", Body=data)
    copy = Manifest.from_json(manifest.to_json().replace(manifest.id, copy_id))
    if how == "from-a-newer-major":
        copy = replace(copy, server_version="99.0")
    dumps.write_manifest(env, copy)
    return copy_id


@pytest.mark.parametrize("how", ["truncated", "corrupted"])
def test_damaged_archive_is_detected_and_refused(env: Environment, first: Manifest, lab: Lab,
                                                 how: str) -> None:
    damaged = _damaged_copy(env, first, how)
    result = verify(env, catalog.find(env, damaged))
    assert not result.ok and "checksums" in result.detail
    assert catalog.find(env, damaged).state.startswith("FAILED")

    with _connect(lab) as conn:
        conn.execute("UPDATE referencedata.orderables SET netcontent = netcontent + 1 "
                     "WHERE code = 'P1'")
    before = checksums(lab)
    count = len(catalog.backups(env))
    with pytest.raises(ChecksumError) as caught:
        restore_db(env, damaged, force=False)
    assert "nothing was changed" in caught.value.hint
    assert checksums(lab) == before
    assert len(catalog.backups(env)) == count


def test_a_dump_from_a_newer_major_is_refused_before_anything_changes(
        env: Environment, first: Manifest, lab: Lab) -> None:
    newer = _damaged_copy(env, first, "from-a-newer-major")
    before, count = checksums(lab), len(catalog.backups(env))
    with pytest.raises(OpsError, match="comes from PostgreSQL 99") as caught:
        restore_db(env, newer, force=False)
    assert "nothing was changed" in caught.value.hint
    assert checksums(lab) == before
    assert len(catalog.backups(env)) == count


def test_restore_waits_for_no_one_holding_the_deploy_lock(env: Environment, first: Manifest,
                                                         lab: Lab) -> None:
    with remote.session(env) as host:
        host.run("mkdir -p /opt/openlmis/deploy.lock", what="taking the lock", root=True)
    before, count = checksums(lab), len(catalog.backups(env))
    try:
        with pytest.raises(OpsError, match="deploy lock"):
            restore_db(env, first.id, force=False)
    finally:
        with remote.session(env) as host:
            host.run("rm -rf /opt/openlmis/deploy.lock", what="dropping the lock", root=True)
    assert checksums(lab) == before
    assert len(catalog.backups(env)) == count


def test_a_file_above_the_part_size_goes_up_in_parts(env: Environment,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "PART", 5 << 20)  # the smallest part S3 takes
    size, key = (12 << 20) + 3, "tests/parts/big"
    dumps.ensure_bucket(env)
    with remote.session(env) as host:
        path = f"{host.work}/big"
        host.run(f"head -c {size} /dev/urandom > {path}", what="making a file")
        sent = transfer.upload(env, host, {path: (key, size)})
        stored = client(env, "s3").head_object(Bucket=env.bucket, Key=key)
        assert stored["ETag"].strip('"').endswith("-3") and stored["ContentLength"] == size
        back = transfer.download(env, host, {f"{path}.back": key})
        _, out = host.run(f"sha256sum < {path}", what="hashing")
    assert sent[path].sha256 == out.split()[0] and back[f"{path}.back"] == sent[path]


def test_a_failed_transfer_says_why_without_the_url(env: Environment) -> None:
    with remote.session(env) as host, pytest.raises(OpsError) as caught:
        transfer.download(env, host, {f"{host.work}/x": "tests/no/such/key"})
    assert "404" in caught.value.message
    assert "X-Amz" not in str(caught.value) and "X-Amz" not in caught.value.hint


def test_an_upload_the_bucket_garbled_fails_the_backup_and_leaves_nothing(
        env: Environment, first: Manifest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Failure injection: S3 (and the emulator) cannot be made to store other bytes, so the
    ETag check is told toc.dat came back different."""
    checked = transfer._checked

    def garbled_toc(line: str, path: str, part: int) -> str:
        if path.endswith("/toc.dat"):
            line = "0" * 32 + " " + line.split()[1]
        return checked(line, path, part)

    def keys() -> set[str]:
        pages = client(env, "s3").get_paginator("list_objects_v2").paginate(Bucket=env.bucket)
        return {o["Key"] for page in pages for o in page.get("Contents", [])}

    monkeypatch.setattr(transfer, "_checked", garbled_toc)
    before, listed = keys(), len(catalog.backups(env))
    with pytest.raises(OpsError) as caught:
        backup.backup_db(env, method="dump", reason="garbled")
    assert "toc.dat" in caught.value.message and "its MD5 is 0000" in caught.value.message
    assert keys() == before and len(catalog.backups(env)) == listed
    assert not client(env, "s3").list_multipart_uploads(Bucket=env.bucket).get("Uploads")


def test_restore_refuses_a_production_tier_without_force(env: Environment,
                                                          first: Manifest) -> None:
    from ops.db.restore import restore_db

    production = env.model_copy(update={"database": env.database.model_copy(
        update={"tier": "production"})})
    with pytest.raises(OpsError, match="--force"):
        restore_db(production, first.id, force=False)
