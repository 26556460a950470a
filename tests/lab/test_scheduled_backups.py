"""The host's scheduled jobs, installed as deploy installs them (ops.host.schedule) on the lab
host test_backup.py uses (bk1, with Docker), run there by systemd: a dump its timer takes, a
drill, a failed run, the metrics, and what `inv status --json` makes of them. The host's
credentials come from the lab's instance metadata service, for a role the emulator knows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ops import config, provider
from ops.aws import identity
from ops.aws.session import client
from ops.config import ROOT, Environment
from ops.db import catalog, drill, dumps, remote, runs
from ops.db.manifest import now
from ops.host import schedule
from ops.host.session import open_host
from ops.lab.lab import Lab
from ops.lab.metadata import MetadataService
from tests.lab.target import database_config

DB = "sched_open_lmis"
NAME = "bksched"
SEED = """
CREATE EXTENSION "uuid-ossp"; CREATE EXTENSION postgis;
CREATE SCHEMA referencedata;
CREATE TABLE referencedata.facilities (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  code text UNIQUE NOT NULL, location geometry(Point, 4326));
INSERT INTO referencedata.facilities (code, location)
  SELECT 'F' || g, ST_SetSRID(ST_MakePoint(g / 100.0, 1), 4326) FROM generate_series(1, 3000) g;
"""


@dataclass
class Scheduled:
    lab: Lab
    config_dir: Path
    text: str  # the environment's file, its schedule aside

    def env(self, dump: str | None, drill: str | None = "Sun *-*-* 04:00:00") -> Environment:
        """The environment with this schedule, its file written (for inv)."""
        def quoted(value: str | None) -> str:
            return "null" if value is None else json.dumps(value)
        path = self.config_dir / f"{NAME}.yml"
        path.write_text(self.text.replace(
            "create_bucket: true}", f"create_bucket: true, schedule: {{dump: {quoted(dump)}, "
            f"drill: {quoted(drill)}, max_age_hours: 26}}}}"))
        return config.load(path=path)

    def seen(self, env: Environment) -> dict:
        """What status shows of the scheduled backups, read in this process."""
        return runs.scheduled(env, now())

    def status(self) -> dict:
        """`inv status --json`'s scheduled backups, as an operator runs it."""
        done = subprocess.run([sys.executable, "-m", "invoke", "status", "--env", NAME, "--json"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env={**os.environ,
                                   "OPS_CONFIG_DIR": str(self.config_dir)})
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["scheduled_backups"]


def install(env: Environment) -> list[str]:
    """What deploy does for the schedule: plan, apply; the plan's lines."""
    with open_host(env) as remote:
        changes = schedule.plan(env, remote)
        for change in changes:
            remote.apply(change.payload.steps, change.line())
    return [change.line() for change in changes]


def on_host(env: Environment, command: str) -> str:
    with open_host(env) as remote:
        return remote.run(command, check=False)


def run_records(env: Environment, kind: str) -> list[str]:
    found = client(env, "s3").list_objects_v2(Bucket=env.bucket, Prefix=f"runs/{kind}/")
    return sorted(o["Key"] for o in found.get("Contents", []))


def metric(env: Environment, name: str) -> list[float]:
    """The values published of one metric in the last hour."""
    end = datetime.now(UTC) + timedelta(minutes=1)
    dimensions = [{"Name": "Environment", "Value": env.name}]
    if name == "DiskUsedPercent":
        dimensions.append({"Name": "Path", "Value": "/"})
    points = client(env, "cloudwatch").get_metric_statistics(
        Namespace="OpenLMIS", MetricName=name, Dimensions=dimensions,
        StartTime=end - timedelta(hours=1), EndTime=end, Period=60,
        Statistics=["Maximum", "SampleCount"])["Datapoints"]
    return [p["Maximum"] for p in points]


@pytest.fixture(scope="module")
def scheduled(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scheduled]:
    host = lab.host("bk1", docker_ready=True)
    with lab.db_connection("postgres") as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    with lab.db_connection(DB) as conn:
        conn.execute(SEED)
    found = Scheduled(lab, Path(tmp_path_factory.mktemp("schedconfig")),
                      database_config(host, DB))
    env = found.env(None, None)
    dumps.ensure_bucket(env)
    iam = client(env, "iam")  # the instance profile provision gives the host
    iam.create_role(RoleName=identity.name(env),
                    AssumeRolePolicyDocument=json.dumps(identity.TRUST))
    iam.create_instance_profile(InstanceProfileName=identity.name(env))
    iam.add_role_to_instance_profile(InstanceProfileName=identity.name(env),
                                     RoleName=identity.name(env))
    MetadataService(lab.state).attach_profile(host.address, identity.name(env))
    with remote.session(env) as host_db:  # the PostgreSQL client, as deploy installs it
        provider.of(env).drill_image(env, host_db.remote, 17)  # a lab host cannot pull it
    yield found
    MetadataService(lab.state).attach_profile(host.address, None)
    install(found.env(None, None))
    with lab.db_connection("postgres") as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


def test_the_backup_age_condition_fires_with_no_dump(scheduled: Scheduled) -> None:
    seen = scheduled.seen(scheduled.env(None, None))
    assert seen["backup_age"]["firing"] and seen["backup_age"]["newest"] is None
    assert seen["last_runs"] == {"dump": None, "drill": None}


def test_the_timer_takes_a_dump_that_restores_and_a_second_install_changes_nothing(
        scheduled: Scheduled) -> None:
    due = datetime.now(UTC) + timedelta(seconds=6)
    env = scheduled.env(f"*-*-* {due:%H:%M:%S}")
    lines = install(env)
    assert any(line.startswith(f"+ {schedule.CONF_DIR}") for line in lines)
    assert f"+ openlmis-backup-dump.timer: scheduled dump, OnCalendar=*-*-* {due:%H:%M:%S} UTC" \
        in lines
    assert any(line.startswith("+ openlmis-host-metrics.timer") for line in lines)
    assert install(env) == []  # a second deploy changes nothing
    deadline = time.monotonic() + 90
    while not run_records(env, "dump"):
        assert time.monotonic() < deadline, on_host(
            env, "journalctl -u openlmis-backup-dump --no-pager | tail -20")
        time.sleep(1)
    assert "n/a" not in on_host(env, "systemctl show -P LastTriggerUSec "
                                     "openlmis-backup-dump.timer")  # the timer ran it
    key = run_records(env, "dump")[0]
    record = runs.Run.from_json(client(env, "s3").get_object(
        Bucket=env.bucket, Key=key)["Body"].read().decode())
    assert record.ok and record.error is None and record.kind == "dump" and record.backup_id
    manifest = dumps.manifest(env, record.backup_id)  # Manifest.from_json accepts it
    assert manifest.reason == "scheduled" and manifest.environment == NAME
    assert manifest.tables["referencedata.facilities"] == 3000
    assert manifest.server_version.startswith("17") and "toc.dat" in manifest.files
    assert catalog.find(env, record.backup_id).reason == "scheduled"
    assert metric(env, "BackupSucceeded") == [1.0]
    password = scheduled.lab.state.secret("db_master_password")
    files = on_host(env, f"systemctl cat openlmis-backup-dump.service "
                         f"openlmis-backup-dump.timer; cat {schedule.CONFIG}")
    assert password not in files and "Environment=" not in files
    assert on_host(env, f"stat -c '%U %a' {schedule.PGPASS} {schedule.CONFIG}").split() == \
        ["root", "600", "root", "600"]
    seen = scheduled.seen(env)
    assert not seen["backup_age"]["firing"] and seen["backup_age"]["newest"] == manifest.id
    assert seen["last_runs"]["dump"]["ok"] and seen["last_runs"]["dump"]["backup_id"] == \
        manifest.id


def test_the_drill_restores_the_newest_dump_and_records_it(scheduled: Scheduled) -> None:
    env = scheduled.env("*-*-* 02:00:00")
    install(env)
    newest = catalog.backups(env)[0]
    assert not newest.verified
    on_host(env, "systemctl start openlmis-backup-drill.service")
    record = runs.latest(env, "drill")
    assert record is not None and record.ok, record
    assert record.backup_id == newest.id
    verified = catalog.find(env, newest.id)
    assert verified.verification and verified.verified
    assert "scheduled drill" in verified.verification.detail
    assert metric(env, "DrillFailed") == [0.0]
    assert on_host(env, "docker ps -aq --filter label=org.openlmis.ops.drill").strip() == ""


def test_a_scheduled_drill_leaves_an_operators_drill_alone(scheduled: Scheduled) -> None:
    env = scheduled.env("*-*-* 02:00:00")
    install(env)
    image = provider.of(env).scheduled_drill_image(env).format(major=17)
    started = on_host(env, f"docker run -d --name {drill.NAME} --label "
                           f"{drill.LABEL}={drill.OPERATOR} --entrypoint sleep {image} 300 2>&1")
    assert on_host(env, f"docker ps -q --filter name={drill.NAME}").strip(), started
    try:
        on_host(env, "systemctl start openlmis-backup-drill.service")
        record = runs.latest(env, "drill")
        assert record is not None and not record.ok
        assert record.error is not None
        assert record.error.startswith("an operator's verify-backup is running its drill")
        assert on_host(env, f"docker ps -q --filter name={drill.NAME}").strip()
    finally:
        on_host(env, drill.REMOVE)


def test_a_drill_of_a_damaged_dump_fails_and_says_so(scheduled: Scheduled) -> None:
    env = scheduled.env("*-*-* 02:00:00")
    good = catalog.backups(env)[0]
    damaged = f"dump-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    bucket = client(env, "s3")
    manifest = json.loads(bucket.get_object(Bucket=env.bucket,
                                            Key=f"dumps/{good.id}/manifest.json")["Body"].read())
    for name in manifest["files"]:
        body = bucket.get_object(Bucket=env.bucket, Key=dumps.data_key(good.id, name))["Body"]
        data = body.read()
        bucket.put_object(Bucket=env.bucket, Key=dumps.data_key(damaged, name),
                          Body=data[:-1] + bytes([data[-1] ^ 1]) if name == "toc.dat" else data)
    bucket.put_object(Bucket=env.bucket, Key=f"dumps/{damaged}/manifest.json",
                      Body=json.dumps({**manifest, "id": damaged}).encode())
    try:
        on_host(env, "systemctl start openlmis-backup-drill.service")
        record = runs.latest(env, "drill")
        assert record is not None and not record.ok and record.backup_id == damaged
        assert record.error == "checksums: toc.dat: sha256 differs from the manifest"
        assert catalog.find(env, damaged).state.startswith("FAILED")
        assert 1.0 in metric(env, "DrillFailed")
    finally:
        dumps.delete(env, damaged)


def test_a_failed_run_is_recorded_and_seen_by_status(scheduled: Scheduled) -> None:
    env = scheduled.env("*-*-* 02:00:00")
    install(env)
    on_host(env, f"sed -i 's/:[^:]*$/:wrong-password/' {schedule.PGPASS}")
    on_host(env, "systemctl start openlmis-backup-dump.service")
    seen = scheduled.status()["last_runs"]["dump"]
    assert not seen["ok"] and "password authentication failed" in seen["error"]
    assert "\n" not in seen["error"]
    assert scheduled.lab.state.secret("db_master_password") not in seen["error"]
    # the next deploy puts the right password back
    assert [line.split(":")[0] for line in install(env)] == [f"~ {schedule.CONF_DIR}"]
    assert install(env) == []


def test_the_metrics_timer_publishes_disk_and_memory(scheduled: Scheduled) -> None:
    env = scheduled.env("*-*-* 02:00:00")
    assert on_host(env, "systemctl is-enabled openlmis-host-metrics.timer").strip() == "enabled"
    on_host(env, "systemctl start openlmis-host-metrics.service")
    disk, memory = metric(env, "DiskUsedPercent"), metric(env, "MemoryAvailablePercent")
    assert disk and 0 < disk[0] < 100 and memory and 0 < memory[0] <= 100


def test_a_schedule_set_to_null_removes_its_timer(scheduled: Scheduled) -> None:
    env = scheduled.env(None, "Sun *-*-* 04:00:00")
    assert install(env) == ["- openlmis-backup-dump.timer: scheduled dump: not scheduled any "
                            "more"]
    assert on_host(env, "systemctl is-enabled openlmis-backup-dump.timer 2>&1; "
                        "ls /etc/systemd/system/openlmis-backup-dump.* 2>/dev/null | wc -l"
                   ).split() == ["not-found", "0"]
    assert install(env) == []


def test_a_calendar_the_host_refuses_stops_before_any_change(scheduled: Scheduled) -> None:
    from ops.errors import OpsError

    env = scheduled.env("*-*-* 25:61:00")
    with open_host(env) as remote, pytest.raises(OpsError) as caught:
        schedule.plan(env, remote)
    assert "backups.schedule.dump '*-*-* 25:61:00' is not a calendar" in caught.value.message
