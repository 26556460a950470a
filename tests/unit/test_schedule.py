"""The host's scheduled jobs, pure parts: units, the plan, the job's signing and records, run
records read back, the backup-age condition, and the lab's metadata service as IMDSv2 says."""

from __future__ import annotations

import ast
import hashlib
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from ops.config import Environment
from ops.db import runs
from ops.db.manifest import DUMP, SNAPSHOT, Backup
from ops.errors import OpsError
from ops.host import backup_job, schedule
from ops.lab import metadata
from ops.lab.state import LabState
from ops.targets import DatabaseTarget

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DB = DatabaseTarget("db.internal", 5432, "open_lmis", "postgres", ca_bundle=b"PEM")
PASSWORD = "s3cret:pass"


def env(**schedule_: object) -> Environment:
    return Environment.model_validate({
        "name": "uat", "domain": "openlmis.example.org",
        "database": {"master_password": "env:X"}, "mail": {"from_address": "a@b.org"},
        "backups": {"schedule": schedule_}})


def wanted(**schedule_: object) -> schedule.Wanted:
    return schedule.wanted(env(**schedule_), DB, PASSWORD, "http://169.254.169.254", 300,
                           ("https://b.s3.af-south-1.amazonaws.com",
                            "https://monitoring.af-south-1.amazonaws.com"),
                           "postgis/postgis:{major}-3.5")


def facts_of(w: schedule.Wanted, **override: str) -> schedule.Facts:
    """Facts of a host that has exactly `w`."""
    files = {p: hashlib.sha256(d).hexdigest() for p, (d, _) in w.files.items()}
    timers = {}
    for job, calendar in w.calendars.items():
        if calendar:
            files |= {p: hashlib.sha256(d).hexdigest() for p, d in w.units(job).items()}
            timers[job] = "enabled/active"
    return schedule.Facts({**files, **override}, timers, {j: "ok" for j in w.calendars})


def test_timer_and_service_units() -> None:
    w = wanted(dump="*-*-* 02:00:00", drill=None)
    units = {p: d.decode() for p, d in w.units("dump").items()}
    timer = units["/etc/systemd/system/openlmis-backup-dump.timer"]
    assert "OnCalendar=*-*-* 02:00:00 UTC\n" in timer and "Persistent=true" in timer
    assert "RandomizedDelaySec=300" in timer and "WantedBy=timers.target" in timer
    service = units["/etc/systemd/system/openlmis-backup-dump.service"]
    assert f"ExecStart=/usr/bin/python3 {schedule.JOB} dump {schedule.CONFIG}" in service
    assert "Type=oneshot" in service and "Environment" not in service
    assert schedule.utc("Sun 04:00 UTC") == "Sun 04:00 UTC"


def test_the_password_is_only_in_the_root_only_pgpass() -> None:
    w = wanted()
    holding = [p for p, (data, _) in w.files.items() if PASSWORD.encode() in data
               or b"s3cret" in data]
    assert holding == [schedule.PGPASS] and w.files[schedule.PGPASS][1] == 0o600
    assert w.files[schedule.CONFIG][1] == 0o600
    config = json.loads(w.files[schedule.CONFIG][0])
    assert config["libpq"]["PGPASSFILE"] == schedule.PGPASS
    assert config["libpq"]["PGSSLMODE"] == "verify-full"
    assert config["drill"]["image"] == "postgis/postgis:{major}-3.5"
    assert w.files[schedule.DUMP_SQL][0].startswith(b"BEGIN ISOLATION LEVEL REPEATABLE READ")
    lines = [c.line() for c in schedule.changes(w, schedule.Facts({}, {}, {}), "h")]
    assert not any("s3cret" in line for line in lines)


def test_a_bare_host_gets_everything_and_an_up_to_date_one_nothing() -> None:
    w = wanted(dump="*-*-* 02:00:00", drill="Sun *-*-* 04:00:00")
    fresh = schedule.changes(w, schedule.Facts({}, {}, {}), "h")
    assert [c.line() for c in fresh] == [
        "+ /etc/openlmis-ops/backup: the scheduled job, its configuration and database "
        "credentials (root only)",
        "+ openlmis-backup-dump.timer: scheduled dump, OnCalendar=*-*-* 02:00:00 UTC",
        "+ openlmis-backup-drill.timer: scheduled restore drill, OnCalendar=Sun *-*-* "
        "04:00:00 UTC",
        "+ openlmis-host-metrics.timer: disk and memory metrics, every 5 minutes"]
    assert schedule.changes(w, facts_of(w), "h") == []


def test_a_changed_file_or_a_stopped_timer_is_put_right() -> None:
    w = wanted()
    changed = schedule.changes(w, facts_of(w, **{schedule.PGPASS: "0" * 64}), "h")
    assert [c.line().split(":")[0] for c in changed] == ["~ /etc/openlmis-ops/backup"]
    steps = changed[0].payload.steps
    assert [s[1] for s in steps if s[0] == "put"] == [schedule.PGPASS]
    stopped = facts_of(w)
    stopped.timers["metrics"] = "enabled/inactive"
    [again] = schedule.changes(w, stopped, "h")
    assert again.line().startswith("~ openlmis-host-metrics.timer")
    assert "enable --now openlmis-host-metrics.timer" in again.payload.steps[-1][1]


def test_a_swarms_other_nodes_get_the_metrics_alone_without_credentials() -> None:
    w = schedule.metrics(wanted(dump="*-*-* 02:00:00", drill="Sun *-*-* 04:00:00"))
    assert set(w.files) == {schedule.JOB, schedule.CONFIG}
    assert b"PGPASSWORD" not in w.files[schedule.CONFIG][0] and PASSWORD.encode() not in (
        w.files[schedule.CONFIG][0])
    fresh = schedule.changes(w, schedule.Facts({}, {}, {}), "h")
    assert [c.line() for c in fresh] == [
        "+ /etc/openlmis-ops/backup: the scheduled job and its configuration (root only)",
        "+ openlmis-host-metrics.timer: disk and memory metrics, every 5 minutes"]
    assert schedule.changes(w, facts_of(w), "h") == []


def test_a_null_schedule_removes_its_timer() -> None:
    before = wanted(dump="*-*-* 02:00:00")
    after = wanted(dump=None)
    [removal] = schedule.changes(after, facts_of(before), "h")
    assert removal.line() == "- openlmis-backup-dump.timer: scheduled dump: not scheduled any more"
    assert "disable --now openlmis-backup-dump.timer" in removal.payload.steps[0][1]
    assert schedule.changes(after, facts_of(after), "h") == []
    gone = facts_of(after)
    gone.timers["dump"] = "not-found/inactive"  # as systemctl says of a removed unit
    assert schedule.changes(after, gone, "h") == []


def test_a_calendar_the_host_refuses_is_one_clear_error() -> None:
    w = wanted(dump="Mon..Fry 02:00")
    facts = schedule.Facts({}, {}, {"dump": "Failed to parse calendar specification"})
    with pytest.raises(OpsError) as caught:
        schedule.changes(w, facts, "10.0.0.5")
    assert caught.value.message == (
        "backups.schedule.dump 'Mon..Fry 02:00' is not a calendar the systemd on 10.0.0.5 "
        "accepts: Failed to parse calendar specification")
    assert "nothing was changed" in caught.value.hint


def test_facts_command_and_parsing() -> None:
    w = wanted(dump="*-*-* 02:00:00", drill=None)
    command = schedule.facts_command(w)
    assert "systemd-analyze calendar '*-*-* 02:00:00 UTC'" in command
    assert "calendar=drill" not in command
    facts = schedule.parse_facts(f"file={schedule.JOB} abc\nfile={schedule.CONFIG} \n"
                                 "timer=dump enabled/active\ntimer=drill /\n"
                                 "calendar=dump ok\nsomething else\n")
    assert facts.sha256 == {schedule.JOB: "abc", schedule.CONFIG: ""}
    assert facts.timers == {"dump": "enabled/active", "drill": "/"}
    assert facts.calendars == {"dump": "ok"}


def test_the_job_uses_the_standard_library_only() -> None:
    tree = ast.parse(Path(backup_job.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported - {"__future__", *__import__("sys").stdlib_module_names}


@pytest.mark.parametrize(("method", "url", "headers", "body"), [
    ("PUT", "https://b.s3.af-south-1.amazonaws.com/dumps/dump-1/data/toc.dat",
     {"If-None-Match": "*"}, b"toc"),
    ("GET", "https://b.s3.af-south-1.amazonaws.com/?list-type=2&prefix=dumps%2F", {}, b""),
    ("POST", "https://monitoring.af-south-1.amazonaws.com/",
     {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
     b"Action=PutMetricData&Namespace=OpenLMIS"),
])
def test_signature_v4_agrees_with_botocore(method: str, url: str, headers: dict[str, str],
                                           body: bytes) -> None:
    service = "monitoring" if "monitoring" in url else "s3"
    creds = backup_job.Credentials("ASIAEXAMPLE", "wJalrXUtnFEMI/K7MDENG", "token-1")
    payload = hashlib.sha256(body).hexdigest()
    ours = backup_job.signed_headers(method, url, headers, payload, creds, "af-south-1",
                                     service, NOW)
    request = AWSRequest(method=method, url=url, data=body,
                         headers={k: v for k, v in ours.items() if k != "Authorization"})
    request.context["timestamp"] = NOW.strftime("%Y%m%dT%H%M%SZ")
    auth = SigV4Auth(BotoCredentials("ASIAEXAMPLE", "wJalrXUtnFEMI/K7MDENG", "token-1"),
                     service, "af-south-1")
    canonical = auth.canonical_request(request)
    theirs = auth.signature(auth.string_to_sign(request, canonical), request)
    assert ours["Authorization"].endswith(f"Signature={theirs}")
    assert ours["x-amz-security-token"] == "token-1"


def test_the_jobs_run_record_is_one_status_reads() -> None:
    text = backup_job.run_record("dump", NOW, NOW + timedelta(minutes=3), None,
                                 backup_job.one_line("pg_dump failed:\n  connection refused"))
    run = runs.Run.from_json(text.decode())
    assert run == runs.Run("dump", NOW.isoformat(), (NOW + timedelta(minutes=3)).isoformat(),
                           False, None, "pg_dump failed: connection refused")
    assert backup_job.stamp(NOW) == "20261128T120000Z"
    with pytest.raises(ValueError):
        runs.Run.from_json('{"kind": "other", "started": "x"}')
    with pytest.raises(ValueError):
        runs.Run.from_json('{"kind": "dump", "started": "yesterday", "finished": "x", '
                           '"ok": true, "backup_id": null, "error": null}')


def test_the_backup_age_condition() -> None:
    def dump(hours: float, reason: str = "scheduled") -> Backup:
        return Backup(id=f"dump-{hours}", kind=DUMP, time=NOW - timedelta(hours=hours),
                      reason=reason)

    snapshot = Backup(id="snap", kind=SNAPSHOT, time=NOW)
    assert runs.backup_age([], NOW, 26).firing
    assert runs.backup_age([snapshot], NOW, 26).newest is None  # snapshots do not count
    old = runs.backup_age([dump(30), dump(27), snapshot], NOW, 26)
    assert old.firing and old.newest == "dump-27" and old.age_hours == 27
    fresh = runs.backup_age([dump(30), dump(2, reason="")], NOW, 26)  # a manual one counts
    assert not fresh.firing and fresh.newest == "dump-2"
    assert not runs.backup_age([dump(26)], NOW, 26).firing


@pytest.fixture
def imds(tmp_path: Path) -> Iterator[str]:
    """The lab's metadata service on this machine's loopback, no profile attached."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), metadata._handler(
        metadata._Service(LabState(tmp_path, "unit"))))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _ask(method: str, url: str, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_the_lab_metadata_service_behaves_as_imdsv2(imds: str) -> None:
    token_url = f"{imds}/latest/api/token"
    assert _ask("PUT", token_url, {})[0] == 400  # no TTL
    assert _ask("PUT", token_url, {"X-aws-ec2-metadata-token-ttl-seconds": "21601"})[0] == 400
    assert _ask("PUT", token_url, {"X-aws-ec2-metadata-token-ttl-seconds": "60",
                                   "X-Forwarded-For": "10.0.0.1"})[0] == 403
    status, token = _ask("PUT", token_url, {"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    assert status == 200 and len(token) > 20
    creds = f"{imds}{metadata.CREDENTIALS}"
    assert _ask("GET", creds, {})[0] == 401  # IMDSv1 refused
    assert _ask("GET", creds, {"X-aws-ec2-metadata-token": "forged"})[0] == 401
    assert _ask("GET", creds, {"X-aws-ec2-metadata-token": token})[0] == 404  # no role
    with pytest.raises(backup_job.JobError, match="no role"):
        backup_job.role_credentials(imds)
