"""resize against the emulator: the database's class changes after a snapshot, the host's type
while it is stopped; the plan says so first, and a second run changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops import config
from ops.approval import Approval
from ops.aws import calls, resize, topology
from ops.config import Environment
from tests.aws.provisioning import boto, make_env


def resized(env: Environment, db_class: str) -> Environment:
    return env.model_copy(update={"database": env.database.model_copy(
        update={"instance_class": db_class})})


def test_resize_plans_then_backs_up_and_changes_the_class(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = make_env(emulator, monkeypatch, tmp_path, zone=False)
    topology.provision(env)
    aws = boto(emulator)
    [host] = [i for r in aws("ec2").describe_instances()["Reservations"] for i in r["Instances"]]
    # No SSH host answers in this tier: without an instance, resize waits for no stack.
    aws("ec2").terminate_instances(InstanceIds=[host["InstanceId"]])
    bigger = resized(env, "db.m6g.large")

    with calls.watch() as log:
        shown = resize.resize(bigger, Approval(plan_only=True))
    assert log.mutations == []
    assert [c.line() for c in shown] == [
        "> backup: a snapshot before the class change",
        "~ database openlmis-awstest-db: class db.t4g.micro → db.m6g.large (RDS restarts "
        "it: minutes of downtime)"]

    with calls.watch() as log:
        resize.resize(bigger)
    assert log.mutations == ["ssm.PutParameter", "rds.CreateDBSnapshot",  # the AWS lock
                             "rds.ModifyDBInstance", "ssm.DeleteParameter"]
    [db] = aws("rds").describe_db_instances()["DBInstances"]
    assert db["DBInstanceClass"] == "db.m6g.large"
    assert len(aws("rds").describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]) == 1

    with calls.watch() as log:
        assert not resize.resize(bigger)
    assert log.mutations == []


def test_the_host_is_stopped_retyped_and_started() -> None:
    env = config.load("example")  # host.instance_type m6i.xlarge
    running = {"InstanceId": "i-1", "InstanceType": "m5.large", "State": {"Name": "running"}}
    [change] = resize.plan(env, None, [running], "snapshot")
    assert change.payload == resize.Host("i-1", "m6i.xlarge", "running")
    assert "m5.large → m6i.xlarge (stopped, retyped, started" in change.line()
    assert not resize.plan(env, None, [{**running, "InstanceType": "m6i.xlarge"}], "snapshot")
