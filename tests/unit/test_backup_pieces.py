"""Pure pieces of backup/restore: manifests, retention selection, libpq and pg_dump details."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ops.db import retention, snapshots, swap, transfer
from ops.db.backup import dump_script
from ops.db.manifest import (
    DUMP,
    SNAPSHOT,
    Backup,
    FileEntry,
    Manifest,
    ManifestError,
    Verification,
    count_differences,
    kind_of,
    new_dump_id,
)
from ops.db.remote import DbHost, client_major, parse_counts, pgpass_line, release_name
from ops.errors import OpsError
from ops.targets import DatabaseTarget

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DB = DatabaseTarget("db.internal", 5432, "open_lmis", "postgres")


def test_manifest_round_trips_through_json() -> None:
    manifest = Manifest(id="dump-20261128T120000Z", time=NOW.isoformat(), environment="uat",
                        database="open_lmis", server_version="17.2", database_size=10 << 20,
                        release="3.19.2", reason="nightly", tables={"a.b": 3},
                        files={"toc.dat": FileEntry("ab" * 32, 10),
                               "3.dat.zst": FileEntry("cd" * 32, 90)})
    again = Manifest.from_json(manifest.to_json())
    assert again == manifest
    assert again.archive_size == 100


def test_ids_sort_by_time_and_tell_their_kind() -> None:
    assert new_dump_id(NOW) == "dump-20261128T120000Z"
    assert new_dump_id(NOW) < new_dump_id(NOW + timedelta(seconds=1))
    assert kind_of("dump-20261128T120000Z") == DUMP
    assert kind_of("openlmis-uat-db-20261128120000") == SNAPSHOT


def test_count_differences_names_each_table() -> None:
    assert count_differences({"a.x": 1, "a.y": 2}, {"a.x": 1, "a.y": 2}) == []
    assert count_differences({"a.x": 1, "a.y": 2}, {"a.x": 0, "a.z": 5}) == [
        "a.x: expected 1, found 0", "a.y: expected 2, found absent",
        "a.z: expected absent, found 5"]


def _backup(kind: str, days_old: float, verified: bool | None = None,
            status: str = "available") -> Backup:
    at = NOW - timedelta(days=days_old)
    check = None if verified is None else Verification(verified, at.isoformat(), "")
    return Backup(id=f"{kind}-{days_old}", kind=kind, time=at, verification=check,
                  status=status)


def test_retention_keeps_the_newest_and_the_recent() -> None:
    backups = [_backup(DUMP, d) for d in (0, 1, 2, 40, 50)]
    pruned = retention.to_prune(backups, keep_last=2, keep_days=30, now=NOW)
    assert [b.id for b in pruned] == ["dump-40", "dump-50"]
    assert retention.to_prune(backups, keep_last=5, keep_days=30, now=NOW) == []
    assert retention.to_prune(backups, keep_last=1, keep_days=60, now=NOW) == []


def test_retention_never_removes_the_newest_verified() -> None:
    backups = [_backup(DUMP, 0, verified=False), _backup(DUMP, 40, verified=True),
               _backup(DUMP, 45, verified=True), _backup(DUMP, 50)]
    pruned = retention.to_prune(backups, keep_last=1, keep_days=30, now=NOW)
    assert [b.id for b in pruned] == ["dump-45", "dump-50"]


def test_retention_counts_kinds_separately_and_skips_in_progress() -> None:
    backups = [_backup(DUMP, 40), _backup(DUMP, 41), _backup(SNAPSHOT, 42),
               _backup(SNAPSHOT, 43), _backup(SNAPSHOT, 44, status="creating")]
    pruned = retention.to_prune(backups, keep_last=1, keep_days=30, now=NOW)
    assert [b.id for b in pruned] == ["dump-41", "snapshot-43"]


def test_pgpass_line_escapes_separators() -> None:
    assert pgpass_line(DB, r"p:a\ss") == "db.internal:5432:*:postgres:p\\:a\\\\ss\n"


def test_release_is_the_symlink_target() -> None:
    assert release_name("/opt/openlmis/releases/3.19.2\n") == "3.19.2"
    assert release_name("") == "none"


def test_client_and_count_parsing() -> None:
    assert client_major("pg_dump (PostgreSQL) 17.12 (Debian 17.12-0+deb13u1)") == 17
    assert client_major("") is None
    assert parse_counts("a.b|3\n\"Weird|Name\".t|0\n") == {"a.b": 3, '"Weird|Name".t': 0}


def test_dump_script_shares_one_snapshot_and_uses_zstd() -> None:
    script = dump_script(DB.name, "/var/tmp/w/dump-1", jobs=4)
    lines = script.splitlines()
    assert lines[0].startswith("BEGIN ISOLATION LEVEL REPEATABLE READ")
    assert "pg_export_snapshot()" in lines[1]
    dump = next(line for line in lines if line.startswith("\\! pg_dump"))
    assert "-Fd -j 4 -Z zstd:2" in dump and '--snapshot="$(cat /var/tmp/w/dump-1/snapshot)"' in dump
    assert script.index("\\! pg_dump") < script.index("query_to_xml") < script.index("COMMIT")


def test_host_never_puts_the_password_in_a_command_and_always_verifies_the_server() -> None:
    host = DbHost(remote=None, db=DB, work="/var/tmp/w s")  # type: ignore[arg-type]
    assert host.libpq.startswith("export PGPASSFILE='/var/tmp/w s'/pgpass PGSSLMODE=verify-full "
                                 "PGSSLROOTCERT='/var/tmp/w s'/ca.pem PGHOST=db.internal")
    assert "PASSWORD" not in host.libpq


def _instance(group: str = "pg17", sgs: tuple[str, ...] = ("sg-1", "sg-2")) -> dict:
    return {"DBInstanceClass": "db.m6g.large",
            "DBParameterGroups": [{"DBParameterGroupName": group}],
            "DBSubnetGroup": {"DBSubnetGroupName": "sub"},
            "VpcSecurityGroups": [{"VpcSecurityGroupId": s} for s in sgs]}


def test_restored_instance_shape_is_compared() -> None:
    want = snapshots.like(_instance())
    assert snapshots.mismatches(want, _instance(sgs=("sg-2", "sg-1"))) == []
    assert snapshots.mismatches(want, _instance(group="default.postgres17", sgs=("sg-0",))) == [
        "DBParameterGroupName: wanted 'pg17', got 'default.postgres17'",
        "security groups: wanted ['sg-1', 'sg-2'], got ['sg-0']"]


@pytest.mark.parametrize("ok", [True, False])
def test_snapshot_verification_tag_round_trips(ok: bool) -> None:
    result = Verification(ok, NOW.isoformat(), "restored to scratch: available")
    assert snapshots._parse(snapshots._tag(result)) == result
    assert len(snapshots._tag(Verification(ok, NOW.isoformat(), "x" * 999))) == 256



def test_closed_files_are_those_no_pg_dump_has_open() -> None:
    host = DbHost(remote=None, db=DB, work="/var/tmp/w")  # type: ignore[arg-type]
    listing = ("/var/tmp/w/d/dump\ntoc.dat\n3.dat.zst\n4.dat.zst\n5.dat.zst\n/\n"
               "/dev/null\n/\n/var/tmp/w/d/dump/4.dat.zst\n/var/tmp/w/other/5.dat.zst\n//\n"
               "3.dat.zst 10\ntoc.dat 0\n4.dat.zst 7\n5.dat.zst 12\n6.dat.zst 0\n")
    host.run = lambda script, **_: (0, listing)  # type: ignore[method-assign]
    assert host.closed_files("/var/tmp/w/d/dump") == {"toc.dat": 0, "3.dat.zst": 10,
                                                      "5.dat.zst": 12}
    host.run = lambda script, **_: (1, "")  # type: ignore[method-assign]
    assert host.closed_files("/var/tmp/w/d/dump") == {}


@pytest.mark.parametrize(("size", "want"), [
    (0, [(0, 0)]), (5, [(0, 5)]), (10, [(0, 10)]), (11, [(0, 10), (10, 1)]),
    (25, [(0, 10), (10, 10), (20, 5)])])
def test_files_above_a_part_go_up_in_parts(size: int, want: list[tuple[int, int]]) -> None:
    assert transfer.parts(size, part=10) == want


def test_an_etag_other_than_the_md5_fails_the_upload() -> None:
    assert transfer._checked("5d41 5d41", "/w/3.dat.zst", 1) == "5d41"
    with pytest.raises(OpsError) as caught:
        transfer._checked("5d41 9a0b-2", "/w/3.dat.zst", 2)
    assert "stored part 2 of /w/3.dat.zst as 9a0b-2, its MD5 is 5d41" in caught.value.message


def test_batches_balance_bytes_largest_first() -> None:
    sizes = {"toc.dat": 1, "big": 100, "mid": 60, "a": 30, "b": 20, "c": 5}
    assert transfer.batches(sizes, 2) == [["big", "c", "toc.dat"], ["mid", "a", "b"]]
    assert transfer.batches(sizes, 1) == [["big", "mid", "a", "b", "c", "toc.dat"]]
    assert transfer.batches({"one": 3}, 4) == [["one"]]
    assert transfer.batches({}, 2) == []


def test_dump_skips_fsync_of_files_that_only_live_until_uploaded() -> None:
    assert "--no-sync" in dump_script(DB.name, "/var/tmp/w/dump-1", jobs=2)


def _tampered(**changes: object) -> str:
    manifest = json.loads(Manifest(
        id="dump-20261128T120000Z", time=NOW.isoformat(), environment="uat",
        database="open_lmis", server_version="17.2", database_size=10, release="3.19.2",
        reason="nightly", tables={"a.b": 3}, files={"toc.dat": FileEntry("ab" * 32, 10)},
    ).to_json())
    manifest.update(changes)
    return json.dumps(manifest)


@pytest.mark.parametrize(("changes", "problem"), [
    ({"files": {"toc.dat": {"sha256": "ab" * 32, "size": 1},
                "../../etc/cron.d/x": {"sha256": "ab" * 32, "size": 1}}},
     "file name '../../etc/cron.d/x' is not a plain name"),
    ({"files": {"toc.dat": {"sha256": "ab" * 32, "size": 1},
                "-rf": {"sha256": "ab" * 32, "size": 1}}}, "'-rf' is not a plain name"),
    ({"files": {"toc.dat": {"sha256": "$(reboot)", "size": 1}}}, "has no valid sha256"),
    ({"files": {"toc.dat": {"sha256": "ab" * 32, "size": -1}}}, "has no valid size"),
    ({"files": {"3.dat.zst": {"sha256": "ab" * 32, "size": 1}}}, "lists no toc.dat"),
    ({"id": "dump-x/../../tmp"}, "is not a dump id"),
    ({"tables": {"a.b": "3; DROP"}}, "tables is not a map"),
    ({"database_size": "10"}, "database_size is not a number"),
    ({"reason": ["x"]}, "reason is not text"),
    ({"extra": 1}, "not a manifest (TypeError"),
])
def test_a_tampered_manifest_is_refused_naming_the_problem(changes: dict[str, object],
                                                          problem: str) -> None:
    with pytest.raises(ManifestError) as refused:
        Manifest.from_json(_tampered(**changes))
    assert problem in str(refused.value)
    assert "nothing was changed" in str(refused.value)


@pytest.mark.parametrize("text", ["", "[]", "{\"files\": 3}", "not json"])
def test_what_is_not_a_manifest_at_all_is_refused_without_a_traceback(text: str) -> None:
    with pytest.raises(ManifestError, match="not a manifest"):
        Manifest.from_json(text)


RESTORE_CREATE_OUTPUT = r"""\restrict abc
SET statement_timeout = 0;
CREATE DATABASE "Open LMIS" WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE = 'C.UTF-8';
ALTER DATABASE "Open LMIS" OWNER TO openlmis;
\unrestrict abc
\connect -reuse-previous=on "dbname='Open LMIS'"
ALTER DATABASE "Open LMIS" SET work_mem TO '8MB';
ALTER ROLE "rs reporting" IN DATABASE "Open LMIS" SET statement_timeout TO '5min';
COMMENT ON DATABASE "Open LMIS" IS 'about ALTER DATABASE x SET';
GRANT CONNECT ON DATABASE "Open LMIS" TO reporting;
REVOKE ALL ON DATABASE "Open LMIS" FROM PUBLIC;
"""


def test_database_settings_are_aimed_at_the_incoming_database() -> None:
    out = swap.retarget(RESTORE_CREATE_OUTPUT, "open_lmis_incoming")
    assert out.splitlines() == [
        r"\restrict abc", "SET statement_timeout = 0;", r"\unrestrict abc",
        """ALTER DATABASE "open_lmis_incoming" SET work_mem TO '8MB';""",
        """ALTER ROLE "rs reporting" IN DATABASE "open_lmis_incoming" SET statement_timeout """
        "TO '5min';",
        """COMMENT ON DATABASE "open_lmis_incoming" IS 'about ALTER DATABASE x SET';""",
        'GRANT CONNECT ON DATABASE "open_lmis_incoming" TO reporting;',
        'REVOKE ALL ON DATABASE "open_lmis_incoming" FROM PUBLIC;']


def test_kept_copies_are_named_for_the_time_and_only_theirs_swap_back() -> None:
    names = swap.Names.restore("open_lmis", datetime(2026, 11, 29, 8, 30, tzinfo=UTC))
    assert names == swap.Names("open_lmis", "open_lmis_incoming",
                               "open_lmis_before_20261129t083000z")
    assert swap.is_copy(names.kept) and not swap.is_copy("openlmis-prod-db-20261129")
    with pytest.raises(OpsError, match="not a copy a restore kept of open_lmis"):
        swap.Names.back("open_lmis", "other_before_20261129t083000z", datetime.now(UTC))
    with pytest.raises(OpsError, match="too long"):
        swap.kept_name("x" * 40, datetime.now(UTC))
